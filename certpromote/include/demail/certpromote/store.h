// The machine certificate store: the card's certificates as files other services (and the
// gateway) can read without the card. One PEM per certificate named by its SHA-256 fingerprint,
// owner root, group [certpromote] group, mode 0640, POSIX ACL entries granting read to the
// configured users and groups and nothing else, and an index (index.tsv). Writes are atomic
// (temporary file, fsync, rename, directory fsync) and idempotent.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace demail::certpromote {

using Bytes = std::vector<unsigned char>;

struct Certificate {
    Bytes der;
    std::string fingerprint;  // SHA-256, lower-case hex
    std::string subject, issuer, serial, notBefore, notAfter, usage;
    std::string keyUri;  // PKCS#11 URI of the matching key on the card, if known
    std::string source;  // "card C500", "file x.pem"
    bool expired = false;
};

// Parses DER or PEM; the error names what is wrong.
bool parseCertificate(const Bytes& data, Certificate& out, std::string& error);
// Chain check against a PEM bundle; empty string when it verifies.
std::string verifyChain(const Certificate& cert, const std::string& caFile);

struct StorePolicy {
    std::string dir;
    gid_t group = 0;
    std::vector<std::pair<std::string, uid_t>> readUsers;
    std::vector<std::pair<std::string, gid_t>> readGroups;
};
// Resolves names to ids; the error names the unknown user or group.
bool makePolicy(const std::string& dir, const std::string& group,
                const std::vector<std::string>& users, const std::vector<std::string>& groups,
                StorePolicy& out, std::string& error);

struct PromoteReport {
    std::vector<std::string> added, updated, unchanged, removed;  // fingerprints
    bool indexChanged = false;
    std::string error;  // set when something could not be written
    bool changed() const {
        return !added.empty() || !updated.empty() || !removed.empty() || indexChanged;
    }
};

PromoteReport promote(const StorePolicy& policy, const std::vector<Certificate>& certs, bool dryRun,
                      bool prune);

struct IndexRow {
    std::string fingerprint, subject, issuer, serial, notBefore, notAfter, usage, keyUri;
};
std::vector<IndexRow> readIndex(const std::string& dir);

}  // namespace demail::certpromote
