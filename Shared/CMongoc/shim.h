#include <stdlib.h>
#include <mongoc/mongoc.h>

/* bson_t and bson_iter_t need 128-byte alignment, which Swift cannot declare. */
static inline bson_t *uc_bson_alloc(void) {
    void *p = NULL;
    if (posix_memalign(&p, 128, sizeof(bson_t)) != 0) return NULL;
    bson_init((bson_t *)p);
    return (bson_t *)p;
}

static inline void uc_bson_free(bson_t *b) {
    if (b) { bson_destroy(b); free(b); }
}

static inline bson_iter_t *uc_iter_new(void) {
    void *p = NULL;
    if (posix_memalign(&p, 128, sizeof(bson_iter_t)) != 0) return NULL;
    return (bson_iter_t *)p;
}

static inline void uc_iter_free(bson_iter_t *it) { free(it); }
