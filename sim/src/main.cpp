// demail-sim: dispatches to the card and provider simulators.
#include <cstdio>
#include <cstring>

#include "sim_entry.h"

namespace {
void usage() {
    std::fputs(
        "usage: demail-sim card [options]      TCOS signature card on pcscd's vpcd driver\n"
        "       demail-sim provider [options]  De-Mail provider endpoint (docs/provider-api.md)\n"
        "       demail-sim <card|provider> --help\n",
        stderr);
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    if (std::strcmp(argv[1], "card") == 0)
        return demail::sim::card_main(argc - 1, argv + 1);
    if (std::strcmp(argv[1], "provider") == 0)
        return demail::sim::provider_main(argc - 1, argv + 1);
    std::fprintf(stderr, "demail-sim: unknown simulator '%s'\n", argv[1]);
    usage();
    return 2;
}
