// demail-sim card: the TCOS card (tcos_card.h) in a virtual reader. pcscd's vpcd driver listens on
// a TCP port (35963 by default) and this process connects to it as the card: 2-byte big-endian
// length, then the payload; a 1-byte payload is a control (0 power off, 1 power on, 2 reset,
// 4 get ATR), anything else a command APDU (reference/tcos-pcsc.md section 2).
//
// Signals: SIGUSR1 pulls the card (closes the link and stays away), SIGUSR2 inserts it again,
// SIGTERM/SIGINT end the process. When pcscd is not there or restarts, it reconnects every 200 ms.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "../src/sim_entry.h"
#include "card_keys.h"
#include "card_state.h"
#include "tcos_card.h"

namespace demail::sim {
namespace {

volatile sig_atomic_t gPull = 0, gInsert = 0, gStop = 0;

void onSignal(int sig) {
    if (sig == SIGUSR1)
        gPull = 1;
    else if (sig == SIGUSR2)
        gInsert = 1;
    else
        gStop = 1;
}

struct Options {
    std::string host = "127.0.0.1";
    int port = 35963;
    std::string stateDir = "demail-sim-card";
    bool sealed = false;
    CertForm certForm = CertForm::OidPrefixed;
    std::string pin = "123456";
    std::string puk = "12345678";
    long removeAfter = 0;
    bool wrongLeOnPin = false;
    long signDelayMs = 0;
    std::string serial;
    std::string logFile;
    std::string subject = "poststelle@firma.de-mail.de";
};

void usage() {
    std::fputs(
        "usage: demail-sim card [options]\n"
        "  --host H            where pcscd's vpcd listens (127.0.0.1)\n"
        "  --port P            vpcd port of the reader slot (35963)\n"
        "  --state DIR         keys, certificates and PIN state; persists like a card\n"
        "                      (./demail-sim-card)\n"
        "  --sealed            a new card is delivered in NullPIN state (PINs unset)\n"
        "  --pin P / --puk P   PIN (all three) and PUK of a new unsealed card (123456/12345678)\n"
        "  --serial HEX        ICCSN of a new card (20 hex digits)\n"
        "  --subject CN        holder of a new card's certificates (poststelle@firma.de-mail.de)\n"
        "  --cert-form F       der | oid-prefixed (oid-prefixed); may change between starts\n"
        "  --remove-after N    pull the card after N APDUs (SIGUSR2 inserts it again)\n"
        "  --sign-delay-ms N   answer each RSA private-key operation (PSO) N ms late, as a real\n"
        "                      card computes: a TCOS card needs 200-500 ms for RSA-2048 (0)\n"
        "  --log FILE          APDU trace; PIN data is never written\n"
        "  --wrong-le-on-pin   misbehave: answer 6C06 ('wrong Le') to every command carrying a\n"
        "                      PIN, without checking it (a client must not send it again)\n"
        "--sealed, --pin, --puk, --serial and --subject only shape a new card: once --state holds\n"
        "one, its PINs, counters and keys are kept, as on a real card.\n"
        "Signals: SIGUSR1 pulls the card, SIGUSR2 inserts it, SIGTERM ends.\n",
        stderr);
}

bool parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&](std::string& out) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "demail-sim card: %s needs a value\n", a.c_str());
                return false;
            }
            out = argv[++i];
            return true;
        };
        std::string v;
        if (a == "--help" || a == "-h") {
            usage();
            std::exit(0);
        } else if (a == "--host") {
            if (!value(o.host))
                return false;
        } else if (a == "--port") {
            if (!value(v))
                return false;
            o.port = std::atoi(v.c_str());
            if (o.port <= 0 || o.port > 65535) {
                std::fprintf(stderr, "demail-sim card: --port %s is not a port\n", v.c_str());
                return false;
            }
        } else if (a == "--state") {
            if (!value(o.stateDir))
                return false;
        } else if (a == "--sealed") {
            o.sealed = true;
        } else if (a == "--pin") {
            if (!value(o.pin))
                return false;
        } else if (a == "--puk") {
            if (!value(o.puk))
                return false;
        } else if (a == "--serial") {
            if (!value(o.serial))
                return false;
        } else if (a == "--subject") {
            if (!value(o.subject))
                return false;
        } else if (a == "--log") {
            if (!value(o.logFile))
                return false;
        } else if (a == "--wrong-le-on-pin") {
            o.wrongLeOnPin = true;
        } else if (a == "--remove-after") {
            if (!value(v))
                return false;
            o.removeAfter = std::atol(v.c_str());
        } else if (a == "--sign-delay-ms") {
            if (!value(v))
                return false;
            char* end = nullptr;
            o.signDelayMs = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || o.signDelayMs < 0 || o.signDelayMs > 60000) {
                std::fprintf(stderr, "demail-sim card: --sign-delay-ms takes 0-60000\n");
                return false;
            }
        } else if (a == "--cert-form") {
            if (!value(v))
                return false;
            if (v == "der")
                o.certForm = CertForm::Der;
            else if (v == "oid-prefixed")
                o.certForm = CertForm::OidPrefixed;
            else {
                std::fprintf(stderr, "demail-sim card: --cert-form is der or oid-prefixed\n");
                return false;
            }
        } else {
            std::fprintf(stderr, "demail-sim card: unknown option %s\n", a.c_str());
            usage();
            return false;
        }
    }
    if (o.pin.size() < 6 || o.pin.size() > 16 || o.puk.size() < 8 || o.puk.size() > 16) {
        std::fprintf(stderr, "demail-sim card: PIN must have 6-16 and PUK 8-16 characters\n");
        return false;
    }
    if (!o.serial.empty() &&
        (o.serial.size() != 20 ||
         o.serial.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)) {
        std::fprintf(stderr, "demail-sim card: --serial needs 20 hex digits\n");
        return false;
    }
    return true;
}

bool readExact(int fd, std::uint8_t* buf, std::size_t n) {
    while (n > 0) {
        const ssize_t r = ::read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        buf += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

bool sendFrame(int fd, const Bytes& payload) {
    Bytes frame = {static_cast<std::uint8_t>(payload.size() >> 8),
                   static_cast<std::uint8_t>(payload.size() & 0xFF)};
    frame.insert(frame.end(), payload.begin(), payload.end());
    std::size_t off = 0;
    while (off < frame.size()) {
        const ssize_t w = ::send(fd, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += static_cast<std::size_t>(w);
    }
    return true;
}

int connectTo(const std::string& host, int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

// A PSO that a real card answers only after its RSA computation: sign (2A 9E 9A) and decipher
// (2A 80 86, TCOS's way to sign with key 0x82), when it succeeded (SW 9000 or 61xx).
bool isPrivateKeyOperation(const Bytes& cmd, const Bytes& resp) {
    if (cmd.size() < 4 || cmd[1] != 0x2A || resp.size() < 2)
        return false;
    const bool sign = cmd[2] == 0x9E && cmd[3] == 0x9A;
    const bool decipher = cmd[2] == 0x80 && cmd[3] == 0x86;
    const std::uint8_t sw1 = resp[resp.size() - 2], sw2 = resp[resp.size() - 1];
    return (sign || decipher) && ((sw1 == 0x90 && sw2 == 0x00) || sw1 == 0x61);
}

// Sleeps `ms` unless the simulator is told to stop; signals do not cut it short otherwise.
void computeFor(long ms) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!gStop) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now())
                .count();
        if (left <= 0)
            return;
        ::poll(nullptr, 0, static_cast<int>(left));
    }
}

class Trace {
  public:
    explicit Trace(const std::string& path) {
        if (!path.empty())
            out_.open(path, std::ios::app);
    }
    void line(const std::string& text) {
        if (out_) {
            out_ << text << "\n";
            out_.flush();
        }
    }
    void apdu(const Bytes& cmd, const Bytes& resp) {
        if (!out_)
            return;
        if (TcosCard::carriesSecret(cmd))
            line("> " + hex(Bytes(cmd.begin(), cmd.begin() + 4)) + " [" +
                 std::to_string(cmd.size() - 4) + " bytes of PIN data not logged]");
        else
            line("> " + hex(cmd, 64));
        line("< " + hex(resp, 64));
    }

  private:
    std::ofstream out_;
};

}  // namespace

int card_main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, o))
        return 2;

    std::string error;
    auto keys = CardKeys::loadOrCreate(o.stateDir, o.subject, error);
    if (!keys) {
        std::fprintf(stderr, "demail-sim card: %s\n", error.c_str());
        return 1;
    }
    const std::string statePath = o.stateDir + "/card.state";
    auto loaded = CardState::load(statePath, error);
    if (!loaded && !error.empty()) {
        std::fprintf(stderr, "demail-sim card: %s\n", error.c_str());
        return 1;
    }
    CardState state = loaded ? *loaded : CardState::fresh(o.sealed, o.pin, o.puk);
    if (!loaded) {
        if (!o.serial.empty())
            state.serialHex = o.serial;
        const std::string err = state.save(statePath);
        if (!err.empty()) {
            std::fprintf(stderr, "demail-sim card: %s\n", err.c_str());
            return 1;
        }
    }
    TcosCard card(*keys, state, o.certForm, [statePath](const CardState& s) {
        const std::string err = s.save(statePath);
        if (!err.empty())
            std::fprintf(stderr, "demail-sim card: %s\n", err.c_str());
    });
    Trace trace(o.logFile);

    struct sigaction sa {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() returns at once on a signal
    for (int sig : {SIGUSR1, SIGUSR2, SIGTERM, SIGINT})
        sigaction(sig, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);

    std::fprintf(stderr, "demail-sim card: vpcd %s:%d, state %s, serial %s, %s, certificates %s\n",
                 o.host.c_str(), o.port, o.stateDir.c_str(), state.serialHex.c_str(),
                 state.pins.at(kPin2).sealed ? "sealed (NullPIN)" : "PINs set",
                 o.certForm == CertForm::Der ? "plain DER" : "OID-prefixed");

    bool present = true;
    long apdus = 0;
    bool announcedWait = false;
    while (!gStop) {
        if (gPull) {
            gPull = 0;
            present = false;
        }
        if (gInsert) {
            gInsert = 0;
            present = true;
            apdus = 0;
        }
        if (!present) {
            ::poll(nullptr, 0, 100);
            continue;
        }
        const int fd = connectTo(o.host, o.port);
        if (fd < 0) {
            if (!announcedWait) {
                trace.line("# waiting for vpcd");
                announcedWait = true;
            }
            ::poll(nullptr, 0, 200);
            continue;
        }
        announcedWait = false;
        trace.line("# inserted");
        card.powerOff();
        while (!gStop && !gPull) {
            pollfd p{fd, POLLIN, 0};
            const int r = ::poll(&p, 1, 200);
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                continue;
            std::uint8_t len[2];
            if (!readExact(fd, len, 2))
                break;  // pcscd went away: reconnect
            Bytes payload((std::size_t{len[0]} << 8) | len[1]);
            if (!payload.empty() && !readExact(fd, payload.data(), payload.size()))
                break;
            if (payload.size() == 1) {
                switch (payload[0]) {
                    case 0:  // power off
                    case 2:  // reset
                        card.powerOff();
                        break;
                    case 4:  // get ATR
                        if (!sendFrame(fd, TcosCard::atr()))
                            goto disconnected;
                        break;
                    default:  // power on
                        break;
                }
                continue;
            }
            {
                const Bytes resp = o.wrongLeOnPin && TcosCard::carriesSecret(payload)
                                       ? Bytes{0x6C, 0x06}
                                       : card.process(payload);
                if (o.signDelayMs > 0 && isPrivateKeyOperation(payload, resp)) {
                    computeFor(o.signDelayMs);
                    trace.line("# private-key operation answered after " +
                               std::to_string(o.signDelayMs) + " ms");
                }
                trace.apdu(payload, resp);
                if (!sendFrame(fd, resp))
                    break;
            }
            if (o.removeAfter > 0 && ++apdus >= o.removeAfter) {
                trace.line("# pulled after " + std::to_string(apdus) + " APDUs");
                present = false;
                break;
            }
        }
    disconnected:
        ::close(fd);
        trace.line("# removed");
    }
    return 0;
}

}  // namespace demail::sim
