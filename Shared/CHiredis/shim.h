#include <hiredis/hiredis.h>

/* Bytes queued on a context and not yet written (its output buffer is an sds string). */
static inline size_t uc_redis_unwritten(const redisContext *context) {
    return context->obuf == NULL ? 0 : sdslen(context->obuf);
}
