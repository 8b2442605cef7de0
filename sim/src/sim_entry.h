// Entry points of the simulators; each takes the arguments after its subcommand name
// (argv[0] is "card" or "provider") and returns the process exit code.
#pragma once

namespace demail::sim {
int card_main(int argc, char** argv);
int provider_main(int argc, char** argv);
}  // namespace demail::sim
