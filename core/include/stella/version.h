/* version.h: build identity, printed by `stella --version` and `stellad --version`. */
#ifndef STELLA_VERSION_H
#define STELLA_VERSION_H

/* Semantic version of this build, e.g. "0.1.0". Static string. */
const char *st_version(void);
/* Short git commit the build was configured from, or "unknown". Static string. */
const char *st_git_commit(void);

#endif
