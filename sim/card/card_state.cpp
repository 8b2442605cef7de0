#include "card_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace demail::sim {

CardState CardState::fresh(bool sealed, const std::string& pin, const std::string& puk) {
    CardState s;
    for (std::uint8_t ref : {kGlobalPin, kPin2, kPin1}) {
        PinRecord r;
        r.sealed = sealed;
        r.value = sealed ? "" : pin;
        s.pins[ref] = r;
    }
    PinRecord p;
    p.value = puk;
    p.tries = p.maxTries = 10;
    p.minLength = 8;
    s.pins[kPuk] = p;
    return s;
}

std::optional<CardState> CardState::load(const std::string& path, std::string& error) {
    std::ifstream in(path);
    if (!in)
        return std::nullopt;
    CardState s;
    std::string line;
    bool ended = false;
    if (!std::getline(in, line) || line != "demail-sim-card 1") {
        error = path + ": not a card state file";
        return std::nullopt;
    }
    while (std::getline(in, line)) {
        if (line == "end") {
            ended = true;
            break;
        }
        std::istringstream f(line);
        std::string kind;
        f >> kind;
        if (kind == "serial") {
            f >> s.serialHex;
        } else if (kind == "pin") {
            unsigned ref = 0;
            PinRecord r;
            int sealed = 0;
            f >> std::hex >> ref >> std::dec >> r.tries >> r.maxTries >> sealed >> r.minLength;
            std::string value;
            if (f >> value && value != "-")
                r.value = value;
            r.sealed = sealed != 0;
            if (!f.eof() && f.fail()) {
                error = path + ": bad line '" + line + "'";
                return std::nullopt;
            }
            s.pins[static_cast<std::uint8_t>(ref)] = r;
        }
    }
    if (!ended) {
        error = path + ": truncated";
        return std::nullopt;
    }
    return s;
}

std::string CardState::save(const std::string& path) const {
    std::ostringstream o;
    o << "demail-sim-card 1\n";
    o << "serial " << serialHex << "\n";
    for (const auto& [ref, r] : pins) {
        char refHex[4];
        std::snprintf(refHex, sizeof refHex, "%02x", ref);
        o << "pin " << refHex << " " << r.tries << " " << r.maxTries << " " << (r.sealed ? 1 : 0)
          << " " << r.minLength << " " << (r.value.empty() ? "-" : r.value) << "\n";
    }
    o << "end\n";
    const std::string text = o.str();
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return "cannot write " + tmp;
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0)
        return "cannot write " + path;
    return {};
}

}  // namespace demail::sim
