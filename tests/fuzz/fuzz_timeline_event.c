/* fuzz_timeline_event.c: libFuzzer target for timeline event decoding (JSON and msgpack
 * envelopes from Redis streams and NATS). Any input must decode or fail cleanly, with no
 * leak, overflow or huge allocation (hostile msgpack container sizes). */
#include <stddef.h>
#include <stdint.h>

#include "timeline/timeline_event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  st_tl_raw_t raw = {"redis:fuzz", 1, 0, data, size, NULL, NULL, NULL};
  st_tl_event_t ev;
  st_error_t err = ST_ERROR_INIT;

  st_tl_event_init(&ev);
  if (st_tl_event_decode(&raw, &ev, &err) == 0)
    st_tl_event_release(&ev);
  return 0;
}
