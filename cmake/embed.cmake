# Writes a C++ source that holds the bytes of INPUT as `const unsigned char NAME[]` and
# `const std::size_t NAME_size` (namespace fdlinkd): how the XDP program is built into the daemon.
file(READ ${INPUT} hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
file(WRITE ${OUTPUT} "// Generated from ${INPUT} by cmake/embed.cmake: do not edit.\n"
     "#include <cstddef>\nnamespace fdlinkd {\n"
     "extern const unsigned char ${NAME}[];\nextern const std::size_t ${NAME}_size;\n"
     "alignas(8) const unsigned char ${NAME}[] = {\n${bytes}\n};\n"
     "const std::size_t ${NAME}_size = ${size};\n}  // namespace fdlinkd\n")
