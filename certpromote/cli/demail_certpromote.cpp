// demail-certpromote: copies the card's certificates (or a directory of PEM/DER files, the
// "user store" of the Windows procedure) into the machine store with owner, mode and ACLs.
// Exit codes (DESIGN.md): 0 ok, 1 failed, 2 usage or configuration, 5 no reader or no card.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "demail/certpromote/config.h"
#include "demail/certpromote/store.h"
#include "demail/config/file.h"
#include "demail/smartcard/card_config.h"
#include "demail/smartcard/card_profile.h"
#include "demail/smartcard/pcsc.h"
#include "demail/smartcard/tcos.h"

using namespace demail;
namespace fs = std::filesystem;

namespace {

void usage(std::ostream& out) {
    out << "usage: demail-certpromote [--config FILE] [--reader SUBSTRING | --from-dir DIR]\n"
           "                          [--store DIR] [--dry-run] [--prune] [--list]\n"
           "  Copies the card's certificates into the machine store ([certpromote] store):\n"
           "  one PEM per certificate named by its SHA-256 fingerprint, owner root, group\n"
           "  [certpromote] group, mode 0640, read ACLs for read_users/read_groups, index.tsv.\n"
           "  --from-dir DIR  take PEM/DER files from DIR instead of the card\n"
           "  --dry-run       say what would change, change nothing\n"
           "  --prune         remove certificates that are no longer on the card\n"
           "  --list          print the store's index\n";
}

std::string percent(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

int fromCard(const std::string& reader, std::vector<certpromote::Certificate>& out) {
    smartcard::PcscContext ctx;
    auto r = ctx.findReader(reader, true);
    if (!r.ok()) {
        std::cerr << "demail-certpromote: " << r.error().message << "\n";
        return 5;
    }
    auto card = smartcard::PcscCard::connect(ctx, r.value());
    if (!card.ok()) {
        std::cerr << "demail-certpromote: " << card.error().message << "\n";
        return 5;
    }
    const auto* profile = smartcard::profileForAtr(card.value()->atr());
    if (!profile) {
        std::cerr << "demail-certpromote: unsupported card, ATR "
                  << smartcard::toHex(card.value()->atr(), ':') << "\n";
        return 1;
    }
    smartcard::TcosCard tcos(*card.value(), *profile);
    for (const auto& spec : profile->certificates) {
        auto der = tcos.readCertificate(spec.fid);
        if (!der.ok()) {
            if (der.error().kind == smartcard::CardErrorKind::NotFound)
                continue;
            std::cerr << "demail-certpromote: " << der.error().message << "\n";
            return der.error().kind == smartcard::CardErrorKind::CardRemoved ? 5 : 1;
        }
        certpromote::Certificate c;
        std::string err;
        if (!certpromote::parseCertificate(der.value(), c, err)) {
            std::cerr << "demail-certpromote: the " << spec.name << " certificate: " << err << "\n";
            return 1;
        }
        // The key's PKCS#11 URI as OpenSC shows it: the signature key (0x80) is on the PIN1
        // token, the others on the PIN2 token (pkcs15-tcos.c).
        const std::string token =
            spec.keyRef == 0x80 ? "NetKey V3 Card (NetKey PIN1)" : profile->pkcs11AuthToken;
        char id[8];
        std::snprintf(id, sizeof id, "%%%02X", spec.pkcs15Id);
        c.keyUri = "pkcs11:token=" + percent(token) + ";id=" + id + ";type=private";
        c.source = "card " + spec.name;
        out.push_back(c);
    }
    return 0;
}

int fromDir(const std::string& dir, std::vector<certpromote::Certificate>& out) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        std::cerr << "demail-certpromote: --from-dir " << dir << " is not a directory\n";
        return 2;
    }
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (!e.is_regular_file())
            continue;
        std::ifstream in(e.path(), std::ios::binary);
        certpromote::Bytes data((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
        certpromote::Certificate c;
        std::string err;
        if (!certpromote::parseCertificate(data, c, err)) {
            std::cerr << "demail-certpromote: skipping " << e.path().string() << ": " << err
                      << "\n";
            continue;
        }
        c.source = "file " + e.path().filename().string();
        out.push_back(c);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string configPath = config::kDefaultPath, reader, dir, store;
    bool readerGiven = false, dryRun = false, prune = false, list = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "demail-certpromote: " << a << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            usage(std::cout);
            return 0;
        } else if (a == "--config") {
            configPath = next();
        } else if (a == "--reader") {
            reader = next();
            readerGiven = true;
        } else if (a == "--from-dir") {
            dir = next();
        } else if (a == "--store") {
            store = next();
        } else if (a == "--dry-run") {
            dryRun = true;
        } else if (a == "--prune") {
            prune = true;
        } else if (a == "--list") {
            list = true;
        } else {
            std::cerr << "demail-certpromote: unknown option " << a << "\n";
            usage(std::cerr);
            return 2;
        }
    }
    // Its own section and [card] (the reader) are checked in full, the other sections' names
    // only: an incomplete [smtp] or [provider] is the daemon's business.
    certpromote::CertPromoteConfig settings;
    smartcard::CardConfig card;
    if (fs::exists(configPath)) {
        std::string error;
        auto file = config::File::read(configPath, error);
        if (file)
            error = file->apply(certpromote::certpromoteSection(), settings);
        if (error.empty())
            error = file->apply(smartcard::cardSection(), card);
        if (!error.empty()) {
            std::cerr << "demail-certpromote: " << error << "\n";
            return 2;
        }
    }
    if (store.empty())
        store = settings.store;
    if (!readerGiven)
        reader = card.reader;
    if (list) {
        const auto rows = certpromote::readIndex(store);
        for (const auto& r : rows)
            std::cout << r.fingerprint << "  " << r.subject << "\n    issuer " << r.issuer
                      << ", serial " << r.serial << ", valid " << r.notBefore << " .. "
                      << r.notAfter << "\n    usage " << r.usage << ", key " << r.keyUri << "\n";
        std::cout << "-- " << rows.size() << " certificates in " << store << "\n";
        return 0;
    }
    certpromote::StorePolicy policy;
    std::string error;
    if (!certpromote::makePolicy(store, settings.group, settings.readUsers, settings.readGroups,
                                 policy, error)) {
        std::cerr << "demail-certpromote: " << error << "\n";
        return 2;
    }
    std::vector<certpromote::Certificate> found, accepted;
    const int rc = dir.empty() ? fromCard(reader, found) : fromDir(dir, found);
    if (rc != 0)
        return rc;
    bool refused = false;
    for (const auto& c : found) {
        if (c.expired) {
            std::cerr << "demail-certpromote: not promoted (" << c.source << "): expired on "
                      << c.notAfter << ": " << c.subject << "\n";
            refused = true;
            continue;
        }
        if (!settings.caFile.empty()) {
            if (auto e = certpromote::verifyChain(c, settings.caFile); !e.empty()) {
                std::cerr << "demail-certpromote: not promoted (" << c.source << "): " << e << "\n";
                refused = true;
                continue;
            }
        }
        accepted.push_back(c);
    }
    const auto report = certpromote::promote(policy, accepted, dryRun, prune);
    if (!report.error.empty()) {
        std::cerr << "demail-certpromote: " << report.error << "\n";
        return 1;
    }
    const char* verb = dryRun ? "would be " : "";
    for (const auto& f : report.added)
        std::cout << verb << "added    " << f << "\n";
    for (const auto& f : report.updated)
        std::cout << verb << "updated  " << f << " (content, owner, mode or ACL)\n";
    for (const auto& f : report.removed)
        std::cout << verb << "removed  " << f << "\n";
    if (!report.changed())
        std::cout << "nothing to do: " << report.unchanged.size() << " certificates already in "
                  << store << " with the right owner, mode and ACL\n";
    else
        std::cout << report.added.size() << " added, " << report.updated.size() << " updated, "
                  << report.unchanged.size() << " unchanged, " << report.removed.size()
                  << " removed" << (dryRun ? " (dry run: nothing written)" : "") << "\n";
    return refused ? 1 : 0;
}
