/* mac_rewrite: an example fdlinkd sink plugin, and a template for your own.
 *
 * Sets the destination and/or source MAC address of every Ethernet frame and sends it to
 * output 0 (the sink's first `to`), for example to deliver frames to a host whose MAC a
 * router would otherwise have written.
 *
 *   [[sink]]
 *   name = "rw"
 *   type = "plugin"
 *   path = "/usr/lib/x86_64-linux-gnu/fdlinkd/plugins/mac_rewrite.so"
 *   to = ["b"]
 *   config = { dst = "02:00:00:00:00:02", src = "02:00:00:00:00:01" }
 *
 * Keys: dst, src (at least one). Counters: rewritten, runts (frames shorter than 14 bytes,
 * dropped).
 *
 * Build out of tree:
 *   cc -shared -fPIC -O2 -I/usr/include mac_rewrite.c -o mac_rewrite.so
 */
#include <fdlinkd/sink_plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct instance {
  unsigned char dst[6], src[6];
  int set_dst, set_src;
  uint32_t rewritten, runts; /* counter indices */
};

static int parse_mac(const char* s, unsigned char mac[6]) {
  unsigned b[6];
  char extra;
  if (strlen(s) != 17 ||
      sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &extra) != 6)
    return 0;
  for (int i = 0; i < 6; ++i)
    mac[i] = (unsigned char)b[i];
  return 1;
}

static void* create(const fdlinkd_host* host, const fdlinkd_kv* keys, uint32_t n, uint32_t outputs,
                    uint32_t workers, char* err, size_t err_len) {
  (void)workers;
  if (outputs != 1) {
    snprintf(err, err_len, "mac_rewrite needs exactly one output in `to` (has %u)", outputs);
    return NULL;
  }
  struct instance* in = calloc(1, sizeof *in);
  if (!in) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < n; ++i) {
    unsigned char* mac = NULL;
    if (strcmp(keys[i].key, "dst") == 0) {
      mac = in->dst;
      in->set_dst = 1;
    } else if (strcmp(keys[i].key, "src") == 0) {
      mac = in->src;
      in->set_src = 1;
    } else {
      snprintf(err, err_len, "unknown key %s (mac_rewrite takes dst and src)", keys[i].key);
      free(in);
      return NULL;
    }
    if (!parse_mac(keys[i].value, mac)) {
      snprintf(err, err_len, "%s = \"%s\" is not a MAC address such as 02:00:00:00:00:01",
               keys[i].key, keys[i].value);
      free(in);
      return NULL;
    }
  }
  if (!in->set_dst && !in->set_src) {
    snprintf(err, err_len, "mac_rewrite needs dst or src in config");
    free(in);
    return NULL;
  }
  in->rewritten = host->add_counter(host->ctx, "rewritten");
  in->runts = host->add_counter(host->ctx, "runts");
  host->log(host->ctx, FDLINKD_LOG_INFO, "mac_rewrite ready");
  return in;
}

static void process(void* instance, const fdlinkd_call* call, fdlinkd_frame* frames, uint32_t n,
                    int32_t* verdicts) {
  const struct instance* in = instance;
  for (uint32_t i = 0; i < n; ++i) {
    if (frames[i].len < 14) {
      verdicts[i] = FDLINKD_DROP;
      ++call->counters[in->runts];
      continue;
    }
    if (in->set_dst) memcpy(frames[i].data, in->dst, 6);
    if (in->set_src) memcpy(frames[i].data + 6, in->src, 6);
    verdicts[i] = 0;
    ++call->counters[in->rewritten];
  }
}

static void destroy(void* instance) {
  free(instance);
}

static const fdlinkd_sink_plugin kPlugin = {
    FDLINKD_SINK_PLUGIN_ABI,
    sizeof(fdlinkd_sink_plugin),
    "mac_rewrite",
    "sets the destination and/or source MAC of every frame",
    FDLINKD_PLUGIN_WRITES_FRAMES,
    create,
    process,
    destroy,
};

__attribute__((visibility("default"))) const fdlinkd_sink_plugin* fdlinkd_sink_plugin_entry(void) {
  return &kPlugin;
}
