/* cmd_evidence.c: `stella evidence VERB ...`, the Evidence Locker's commands. Each verb's
 * file exposes one entry taking argv[0] = the verb: export and import are
 * st_cli_evidence_port (cmd_evidence_port.c). */
#include <string.h>

#include "cli.h"

int st_cmd_evidence(int argc, char **argv) {
  static const struct {
    const char *verb;
    int (*run)(int argc, char **argv);
  } verbs[] = {
      {"export", st_cli_evidence_port},
      {"import", st_cli_evidence_port},
  };
  if (argc >= 2)
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
      if (!strcmp(argv[1], verbs[i].verb))
        return verbs[i].run(argc - 1, argv + 1);
  return st_cli_usage("usage: stella evidence export|import ... (see docs/airgap/evidence.md)");
}
