/* version.c: build identity injected by CMake at configure time. */
#include "stella/version.h"

const char *st_version(void) { return STELLA_VERSION; }
const char *st_git_commit(void) { return STELLA_GIT_COMMIT; }
