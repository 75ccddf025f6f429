// Boost.JSON's implementation, compiled once (header-only mode: no libboost_json needed).
#include <boost/json/src.hpp>
