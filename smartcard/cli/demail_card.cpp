// demail-card: the operator's tool for the De-Mail card: status, PIN initialisation from the
// sealed state, PIN change, unblock with the PUK, certificate list and export.
// Exit codes (DESIGN.md): 0 ok, 1 failed, 2 usage or configuration, 3 wrong PIN, 4 PIN or card
// blocked, 5 no reader or no card.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "demail/config/file.h"
#include "demail/smartcard/card_config.h"
#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/pcsc.h"
#include "demail/smartcard/secret.h"
#include "demail/smartcard/tcos.h"

using namespace demail::smartcard;

namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2, kWrongPin = 3, kBlocked = 4, kNoCard = 5;

void usage(std::ostream& out) {
    out << "usage: demail-card [--config FILE] [--reader SUBSTRING] COMMAND\n"
           "  status [--json]        reader, card type, serial, PINs with tries left, "
           "certificates\n"
           "  pin init               set the first PIN of a sealed (NullPIN) card\n"
           "  pin change             change a PIN (asks for the old one)\n"
           "  pin unblock            set a new PIN with the PUK after it was blocked\n"
           "  certs list             the card's certificates: subject, issuer, expiry\n"
           "  certs export --out DIR write them as PEM files (existing ones: --force)\n"
           "PIN options: --pin-ref REF (hex; default: the PIN of the TLS key, 83),\n"
           "  --pin-stdin (read PINs one per line, in the order asked), --force (try a PIN\n"
           "  even if only one try is left).\n"
           "The reader comes from --reader, else [card] reader of the configuration\n"
           "(default /etc/demail-gateway/gateway.ini), else the first reader with a card.\n"
           "Exit codes: 0 ok, 1 failed, 2 usage, 3 wrong PIN, 4 blocked, 5 no reader or card.\n";
}

int exitFor(const CardError& e) {
    switch (e.kind) {
        case CardErrorKind::WrongPin:
            return e.triesLeft == 0 ? kBlocked : kWrongPin;
        case CardErrorKind::PinBlocked:
            return kBlocked;
        case CardErrorKind::NoService:
        case CardErrorKind::NoReader:
        case CardErrorKind::NoCard:
        case CardErrorKind::CardRemoved:
            return kNoCard;
        default:
            return kFailed;
    }
}

int fail(const CardError& e) {
    std::string hint;
    if (e.kind == CardErrorKind::WrongPin && e.triesLeft == 1)
        hint = " Careful: one more wrong PIN blocks it.";
    else if (e.kind == CardErrorKind::WrongPin && e.triesLeft == 0)
        hint = " The PIN is now blocked: use 'demail-card pin unblock' with the PUK.";
    else if (e.kind == CardErrorKind::PinBlocked)
        hint = " Use 'demail-card pin unblock' with the PUK.";
    else if (e.kind == CardErrorKind::PinNotInitialised)
        hint = " Set the first PIN with 'demail-card pin init'.";
    std::cerr << "demail-card: " << e.message << "." << hint << "\n";
    return exitFor(e);
}

struct Options {
    std::string config = demail::config::kDefaultPath;
    bool configGiven = false;
    std::optional<std::string> reader;
    std::vector<std::string> command;
    bool json = false;
    bool pinStdin = false;
    bool force = false;
    std::optional<std::uint8_t> pinRef;
    std::string outDir;
};

// Reads PINs from the terminal without echo, or from stdin one per line.
class PinReader {
  public:
    explicit PinReader(bool fromStdin) : fromStdin_(fromStdin) {}
    std::optional<Secret> ask(const std::string& prompt) {
        std::string line;
        if (fromStdin_) {
            if (!std::getline(std::cin, line))
                return std::nullopt;
        } else {
            FILE* tty = std::fopen("/dev/tty", "r+");
            if (!tty)
                return std::nullopt;
            std::fprintf(tty, "%s: ", prompt.c_str());
            std::fflush(tty);
            termios old{};
            tcgetattr(fileno(tty), &old);
            termios quiet = old;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            tcsetattr(fileno(tty), TCSANOW, &quiet);
            char buf[128];
            const bool got = std::fgets(buf, sizeof buf, tty) != nullptr;
            tcsetattr(fileno(tty), TCSANOW, &old);
            std::fprintf(tty, "\n");
            std::fclose(tty);
            if (!got)
                return std::nullopt;
            line = buf;
            OPENSSL_cleanse(buf, sizeof buf);
        }
        while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
            line.pop_back();
        return Secret(std::move(line));
    }
    // A new PIN, asked twice on a terminal.
    std::optional<Secret> askNew(const std::string& what) {
        auto first = ask("New " + what);
        if (!first || fromStdin_)
            return first;
        auto second = ask("Repeat the new " + what);
        if (!second || second->reveal() != first->reveal()) {
            std::cerr << "demail-card: the two entries differ; nothing was changed.\n";
            return std::nullopt;
        }
        return first;
    }

  private:
    bool fromStdin_;
};

struct Card {
    PcscContext context;
    std::unique_ptr<PcscCard> channel;
    std::unique_ptr<TcosCard> tcos;
    std::string reader;
};

Result<std::unique_ptr<Card>> openCard(const std::string& readerSubstring) {
    auto card = std::make_unique<Card>();
    auto reader = card->context.findReader(readerSubstring, true);
    if (!reader.ok())
        return reader.error();
    auto ch = PcscCard::connect(card->context, reader.value());
    if (!ch.ok())
        return ch.error();
    const CardProfile* profile = profileForAtr(ch.value()->atr());
    if (!profile)
        return cardError(CardErrorKind::UnsupportedCard, "unsupported card, ATR " +
                                                             toHex(ch.value()->atr(), ':') +
                                                             " (known: TeleSec TCOS 3 NetKey)");
    card->reader = reader.value();
    card->channel = std::move(ch.value());
    card->tcos = std::make_unique<TcosCard>(*card->channel, *profile);
    return card;
}

struct CertView {
    std::string subject, issuer, notAfter, serial;
    bool expired = false;
    long daysLeft = 0;
};

std::optional<CertView> describe(const Bytes& der) {
    const unsigned char* p = der.data();
    X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
    if (!x)
        return std::nullopt;
    CertView v;
    char buf[512];
    X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof buf);
    v.subject = buf;
    X509_NAME_oneline(X509_get_issuer_name(x), buf, sizeof buf);
    v.issuer = buf;
    tm t{};
    ASN1_TIME_to_tm(X509_get0_notAfter(x), &t);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &t);
    v.notAfter = when;
    int days = 0, secs = 0;
    ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(x));
    v.daysLeft = days;
    v.expired = days < 0 || (days == 0 && secs < 0);
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr);
    char* hex = BN_bn2hex(bn);
    v.serial = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(x);
    return v;
}

int status(Card& card, bool json) {
    auto serial = card.tcos->serial();
    if (!serial.ok())
        return fail(serial.error());
    const CardProfile& profile = card.tcos->profile();
    std::vector<PinStatus> pins;
    for (const auto& spec : profile.pins) {
        auto st = card.tcos->pinStatus(spec.ref);
        if (!st.ok())
            return fail(st.error());
        pins.push_back(st.value());
    }
    std::vector<std::pair<const CertSpec*, std::optional<CertView>>> certs;
    for (const auto& spec : profile.certificates) {
        auto der = card.tcos->readCertificate(spec.fid);
        certs.emplace_back(&spec, der.ok() ? describe(der.value()) : std::nullopt);
    }
    if (json) {
        Poco::JSON::Object root;
        root.set("reader", card.reader);
        root.set("atr", toHex(card.channel->atr(), ':'));
        root.set("card", profile.name);
        root.set("serial", serial.value());
        Poco::JSON::Array pinArray;
        for (const auto& p : pins) {
            Poco::JSON::Object o;
            o.set("ref", toHex({p.ref}, 0));
            o.set("name", p.name);
            o.set("state", std::string(toString(p.state)));
            o.set("tries_left", p.triesLeft);
            o.set("max_tries", p.maxTries);
            o.set("protects_tls_key", p.ref == profile.authPinRef);
            pinArray.add(o);
        }
        root.set("pins", pinArray);
        Poco::JSON::Array certArray;
        for (const auto& [spec, view] : certs) {
            Poco::JSON::Object o;
            o.set("name", spec->name);
            o.set("file", toHex(spec->path, 0));
            o.set("key_ref", toHex({spec->keyRef}, 0));
            if (view) {
                o.set("subject", view->subject);
                o.set("issuer", view->issuer);
                o.set("not_after", view->notAfter);
                o.set("days_left", view->daysLeft);
            } else {
                o.set("error", "no readable certificate");
            }
            certArray.add(o);
        }
        root.set("certificates", certArray);
        root.stringify(std::cout, 2);
        std::cout << "\n";
        return kOk;
    }
    std::cout << "Reader:      " << card.reader << "\n"
              << "Card:        " << profile.name << "\n"
              << "ATR:         " << toHex(card.channel->atr(), ':') << "\n"
              << "Serial:      " << serial.value() << "\n\nPINs:\n";
    for (const auto& p : pins) {
        std::printf("  %02X  %-45s %-26s %s%s\n", p.ref, p.name.c_str(), toString(p.state),
                    p.triesLeft >= 0 ? (std::to_string(p.triesLeft) + " tries left").c_str() : "",
                    p.ref == profile.authPinRef ? "  <- TLS key" : "");
    }
    std::cout << "\nCertificates:\n";
    for (const auto& [spec, view] : certs) {
        if (!view) {
            std::printf("  %-15s (none readable)\n", spec->name.c_str());
            continue;
        }
        std::printf(
            "  %-15s %s\n  %-15s valid until %s%s\n", spec->name.c_str(), view->subject.c_str(), "",
            view->notAfter.c_str(),
            view->expired ? "  EXPIRED" : (view->daysLeft < 30 ? "  expires within 30 days" : ""));
    }
    return kOk;
}

int certs(Card& card, const Options& o) {
    const bool exporting = o.command.size() >= 2 && o.command[1] == "export";
    if (exporting && o.outDir.empty()) {
        std::cerr << "demail-card: certs export needs --out DIR\n";
        return kUsage;
    }
    // Often run as root into a directory someone else may write to: every file is opened
    // relative to the directory with O_CREAT|O_EXCL|O_NOFOLLOW, so a planted symlink is never
    // followed. An existing file is an error unless --force, which removes the name first (a
    // symlink itself, never its target).
    int outFd = -1;
    if (exporting) {
        std::error_code ec;
        std::filesystem::create_directories(o.outDir, ec);
        outFd = ::open(o.outDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (outFd < 0) {
            std::cerr << "demail-card: cannot open the directory " << o.outDir << ": "
                      << std::strerror(errno) << "\n";
            return kFailed;
        }
    }
    struct Closer {
        int fd;
        ~Closer() {
            if (fd >= 0)
                ::close(fd);
        }
    } closeOut{outFd};
    int found = 0;
    for (const auto& spec : card.tcos->profile().certificates) {
        auto der = card.tcos->readCertificate(spec.fid);
        if (!der.ok()) {
            if (der.error().kind == CardErrorKind::NotFound)
                continue;
            return fail(der.error());
        }
        auto view = describe(der.value());
        ++found;
        if (!exporting) {
            std::cout << spec.name << " (file " << toHex(spec.path, 0) << ", key "
                      << toHex({spec.keyRef}, 0) << ")\n  subject: " << (view ? view->subject : "?")
                      << "\n  issuer:  " << (view ? view->issuer : "?")
                      << "\n  serial:  " << (view ? view->serial : "?")
                      << "\n  until:   " << (view ? view->notAfter : "?") << "\n";
            continue;
        }
        const std::string name = spec.name + ".pem";
        const std::string path = o.outDir + "/" + name;
        if (o.force && ::unlinkat(outFd, name.c_str(), 0) != 0 && errno != ENOENT) {
            std::cerr << "demail-card: cannot replace " << path << ": " << std::strerror(errno)
                      << "\n";
            return kFailed;
        }
        const int fd = ::openat(outFd, name.c_str(),
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            const int e = errno;
            std::cerr << "demail-card: cannot create " << path << ": " << std::strerror(e)
                      << (e == EEXIST ? " (it exists or is a link; --force replaces it)" : "")
                      << "\n";
            return kFailed;
        }
        const unsigned char* p = der.value().data();
        X509* x = d2i_X509(nullptr, &p, static_cast<long>(der.value().size()));
        FILE* f = ::fdopen(fd, "w");
        if (!f)
            ::close(fd);
        bool ok = x && f && PEM_write_X509(f, x);
        if (f && std::fclose(f) != 0)
            ok = false;
        X509_free(x);
        if (!ok) {
            std::cerr << "demail-card: cannot write " << path << "\n";
            return kFailed;
        }
        std::cout << "wrote " << path << "\n";
    }
    if (found == 0) {
        std::cerr << "demail-card: the card holds no certificates\n";
        return kFailed;
    }
    return kOk;
}

int pin(Card& card, const Options& o) {
    if (o.command.size() < 2) {
        usage(std::cerr);
        return kUsage;
    }
    const std::string& action = o.command[1];
    const CardProfile& profile = card.tcos->profile();
    const std::uint8_t ref = o.pinRef.value_or(profile.authPinRef);
    const PinSpec* spec = profile.pin(ref);
    if (!spec) {
        std::cerr << "demail-card: this card has no PIN reference " << toHex({ref}, 0) << "\n";
        return kUsage;
    }
    auto st = card.tcos->pinStatus(ref);
    if (!st.ok())
        return fail(st.error());
    PinReader reader(o.pinStdin);

    if (action == "init") {
        if (st.value().state != PinState::Sealed) {
            std::cerr << "demail-card: the " << spec->name
                      << " is already set; use 'demail-card pin change'.\n";
            return kFailed;
        }
        auto pinValue = reader.askNew(spec->name);
        if (!pinValue)
            return kUsage;
        auto r = card.tcos->initialise(ref, *pinValue);
        if (!r.ok())
            return fail(r.error());
        std::cout << "The " << spec->name << " is set. Put it into the PIN file of the gateway "
                  << "([card] pin_file), readable only by root and the service.\n";
        return kOk;
    }
    if (action == "change") {
        if (st.value().state == PinState::Sealed)
            return fail(cardError(CardErrorKind::PinNotInitialised,
                                  "the " + spec->name + " is not set yet (sealed card)"));
        if (st.value().state == PinState::Blocked)
            return fail(cardError(CardErrorKind::PinBlocked, "the " + spec->name + " is blocked"));
        if (st.value().triesLeft == 1 && !o.force) {
            std::cerr << "demail-card: the " << spec->name
                      << " has one try left; a mistake blocks it. Repeat with --force if you "
                         "are sure of the PIN.\n";
            return kFailed;
        }
        auto old = reader.ask("Current " + spec->name);
        if (!old)
            return kUsage;
        auto fresh = reader.askNew(spec->name);
        if (!fresh)
            return kUsage;
        auto r = card.tcos->change(ref, *old, *fresh);
        if (!r.ok())
            return fail(r.error());
        std::cout << "The " << spec->name << " was changed. Update the gateway's PIN file and "
                  << "reload the service (systemctl reload demail-gatewayd).\n";
        return kOk;
    }
    if (action == "unblock") {
        auto puk = card.tcos->pinStatus(profile.pukRef);
        if (puk.ok() && puk.value().state == PinState::Blocked)
            return fail(cardError(CardErrorKind::PinBlocked,
                                  "the PUK is blocked; the card cannot be unblocked any more"));
        if (puk.ok() && puk.value().triesLeft == 1 && !o.force) {
            std::cerr << "demail-card: the PUK has one try left; a mistake blocks the card for "
                         "good. Repeat with --force if you are sure of the PUK.\n";
            return kFailed;
        }
        auto pukValue = reader.ask("PUK");
        if (!pukValue)
            return kUsage;
        auto fresh = reader.askNew(spec->name);
        if (!fresh)
            return kUsage;
        auto r = card.tcos->unblock(ref, *pukValue, *fresh);
        if (!r.ok())
            return fail(r.error());
        std::cout << "The " << spec->name << " is unblocked and set to the new PIN.\n";
        return kOk;
    }
    usage(std::cerr);
    return kUsage;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&](std::string& out) {
            if (i + 1 >= argc) {
                std::cerr << "demail-card: " << a << " needs a value\n";
                return false;
            }
            out = argv[++i];
            return true;
        };
        std::string v;
        if (a == "--help" || a == "-h") {
            usage(std::cout);
            return kOk;
        } else if (a == "--config") {
            if (!next(o.config))
                return kUsage;
            o.configGiven = true;
        } else if (a == "--reader") {
            if (!next(v))
                return kUsage;
            o.reader = v;
        } else if (a == "--json") {
            o.json = true;
        } else if (a == "--pin-stdin") {
            o.pinStdin = true;
        } else if (a == "--force") {
            o.force = true;
        } else if (a == "--out") {
            if (!next(o.outDir))
                return kUsage;
        } else if (a == "--pin-ref") {
            if (!next(v))
                return kUsage;
            try {
                o.pinRef = static_cast<std::uint8_t>(std::stoul(v, nullptr, 16));
            } catch (const std::exception&) {
                std::cerr << "demail-card: --pin-ref takes a hex reference such as 83\n";
                return kUsage;
            }
        } else if (!a.empty() && a[0] == '-') {
            std::cerr << "demail-card: unknown option " << a << "\n";
            usage(std::cerr);
            return kUsage;
        } else {
            o.command.push_back(a);
        }
    }
    if (o.command.empty()) {
        usage(std::cerr);
        return kUsage;
    }
    std::string reader = o.reader.value_or("");
    if (!o.reader) {
        if (std::filesystem::exists(o.config)) {
            // [card] is checked in full, the other sections' names only (config/file.h).
            std::string error;
            CardConfig card;
            auto file = demail::config::File::read(o.config, error);
            if (file)
                error = file->apply(cardSection(), card);
            if (!error.empty()) {
                std::cerr << "demail-card: " << error << "\n";
                return kUsage;
            }
            reader = card.reader;
        } else if (o.configGiven) {
            std::cerr << "demail-card: configuration file " << o.config << " not found\n";
            return kUsage;
        }
    }
    const std::string& cmd = o.command[0];
    if (cmd != "status" && cmd != "pin" && cmd != "certs") {
        std::cerr << "demail-card: unknown command '" << cmd << "'\n";
        usage(std::cerr);
        return kUsage;
    }
    auto card = openCard(reader);
    if (!card.ok())
        return fail(card.error());
    if (cmd == "status")
        return status(*card.value(), o.json);
    if (cmd == "certs")
        return certs(*card.value(), o);
    return pin(*card.value(), o);
}
