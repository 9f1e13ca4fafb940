#include <jansson.h>

static inline json_type uc_json_typeof(const json_t *j) { return json_typeof(j); }
