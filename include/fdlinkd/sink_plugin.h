/* fdlinkd sink plugins: the C ABI a shared object implements to be a sink type.
 *
 *   [[sink]]
 *   name = "rw"
 *   type = "plugin"
 *   path = "/usr/lib/fdlinkd/plugins/mac_rewrite.so"
 *   to = ["b"]                          # its outputs, in order (may be empty)
 *   config = { dst = "02:00:00:00:00:02" }   # the plugin's own keys, handed to create()
 *
 * fdlinkd dlopen()s `path` when it reads the config, calls the one exported function
 * fdlinkd_sink_plugin_entry(), checks abi_version and struct_size before anything else, then calls
 * create() with the plugin's keys: a plugin that fails to load, has another ABI version or
 * rejects its keys is a config error (exit 2, path:line:col), never a crash of the daemon.
 *
 * process() runs on fdlinkd's worker threads, several at once when workers > 1 (each call
 * says which): it must not block, and should keep per-worker state apart. It gets plain C
 * frame views and returns, per frame, an output index or FDLINKD_DROP. Frames are
 * read-only unless the plugin sets FDLINKD_PLUGIN_WRITES_FRAMES; then each frame it gets is
 * its own to change (fdlinkd copies one only when another output still needs the original).
 * No C++, Asio or STL type crosses this boundary.
 *
 * Versioning: FDLINKD_SINK_PLUGIN_ABI changes when a struct changes incompatibly; fields are
 * only ever added at the end, and struct_size says how much of a struct the other side has.
 */
#ifndef FDLINKD_SINK_PLUGIN_H
#define FDLINKD_SINK_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FDLINKD_SINK_PLUGIN_ABI 1
#define FDLINKD_SINK_PLUGIN_SYMBOL "fdlinkd_sink_plugin_entry"
#define FDLINKD_DROP (-1)
#define FDLINKD_PLUGIN_WRITES_FRAMES 1u

enum fdlinkd_log_level {
  FDLINKD_LOG_DEBUG = 0,
  FDLINKD_LOG_INFO = 1,
  FDLINKD_LOG_WARN = 2,
  FDLINKD_LOG_ERROR = 3
};

/* One frame. With FDLINKD_PLUGIN_WRITES_FRAMES the bytes may be changed in place (not the
 * length). */
typedef struct fdlinkd_frame {
  uint8_t* data; /* the Ethernet (or, from a TUN link, IP) frame, VLAN tag included */
  uint32_t len;
  uint8_t vnet_flags; /* virtio-net header flags: 1 NEEDS_CSUM, 2 DATA_VALID; 0 without one */
  uint8_t gso_type;   /* 0 none, 1 TCPv4, 4 TCPv6, 5 UDP_L4 (a super-frame) */
  uint16_t reserved;
  int64_t rx_ns; /* kernel receive time, ns since the epoch (0: unknown) */
} fdlinkd_frame;

/* A key of the plugin's `config` table. Strings as written; integers, floats and booleans as
 * their TOML text; arrays and tables are refused by the host. */
typedef struct fdlinkd_kv {
  const char* key;
  const char* value;
} fdlinkd_kv;

/* What the host offers create(). */
typedef struct fdlinkd_host {
  uint32_t struct_size;
  void* ctx;
  /* Declares a counter (shown as the sink's counter `name`); returns its index for
   * fdlinkd_call.counters. Only during create(). */
  uint32_t (*add_counter)(void* ctx, const char* name);
  /* Logs a line under the sink's name; any thread. */
  void (*log)(void* ctx, int level, const char* msg);
} fdlinkd_host;

/* One call of process(). */
typedef struct fdlinkd_call {
  uint32_t struct_size;
  uint32_t worker;    /* 0 .. workers-1: the calling thread */
  uint64_t* counters; /* add to these (one per add_counter); summed by the host afterwards */
} fdlinkd_call;

typedef struct fdlinkd_sink_plugin {
  uint32_t abi_version; /* FDLINKD_SINK_PLUGIN_ABI */
  uint32_t struct_size; /* sizeof(fdlinkd_sink_plugin) */
  const char* name;     /* one word, for messages */
  const char* help;     /* one line */
  uint32_t flags;       /* FDLINKD_PLUGIN_WRITES_FRAMES */
  /* Makes an instance for `outputs` outputs and `workers` worker threads from `n` keys, or
   * returns NULL after writing why into err (at most err_len bytes, NUL-terminated). */
  void* (*create)(const fdlinkd_host* host, const fdlinkd_kv* keys, uint32_t n, uint32_t outputs,
                  uint32_t workers, char* err, size_t err_len);
  /* For each of the n frames, writes an output index (0 .. outputs-1) or FDLINKD_DROP. */
  void (*process)(void* instance, const fdlinkd_call* call, fdlinkd_frame* frames, uint32_t n,
                  int32_t* verdicts);
  void (*destroy)(void* instance);
} fdlinkd_sink_plugin;

/* The one symbol a plugin exports:
 *   const fdlinkd_sink_plugin* fdlinkd_sink_plugin_entry(void);  */
typedef const fdlinkd_sink_plugin* (*fdlinkd_sink_plugin_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* FDLINKD_SINK_PLUGIN_H */
