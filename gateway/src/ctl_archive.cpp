#include "demail/gateway/ctl_archive.h"

#include <fstream>

#include "demail/archive/archive.h"

namespace demail::gateway {
namespace {

// Text from the archive on a terminal: control characters shown, never interpreted.
std::string printable(const std::string& s) {
    std::string out;
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", u);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

std::string field(const archive::Record& r, const char* name) {
    const auto it = r.fields.find(name);
    return it == r.fields.end() ? "" : it->second;
}

const archive::Record* find(const std::vector<archive::Record>& all, const std::string& seq) {
    for (const auto& r : all)
        if (std::to_string(r.seq) == seq)
            return &r;
    return nullptr;
}

}  // namespace

int runArchiveCommand(const std::string& dir, const std::vector<std::string>& args,
                      std::ostream& out, std::ostream& err) {
    const std::string cmd = args.empty() ? "" : args[0];
    if (cmd == "verify" && args.size() == 1) {
        const auto v = archive::verify(dir);
        for (const auto& p : v.problems)
            out << "PROBLEM " << printable(p) << "\n";
        if (v.ok)
            out << "archive verified: " << v.records << " records (" << v.firstSeq << ".."
                << v.lastSeq << "), head " << v.headHash << "\n"
                << "Compare the head with one recorded earlier (the daemon logs "
                   "event=archive_head hourly): records removed from the end leave no gap.\n";
        else
            out << "archive NOT verified: " << v.problems.size() << " problem(s) in " << v.records
                << " records\n";
        return v.ok ? 0 : 1;
    }
    std::string error;
    const auto all = archive::readAll(dir, error);
    if (!error.empty())
        err << "demailctl archive: " << printable(error) << " (run demailctl archive verify)\n";
    if (cmd == "list") {
        // list [KEY=VALUE]...: records whose kind or fields match every filter.
        for (const auto& r : all) {
            bool match = true;
            for (std::size_t i = 1; i < args.size(); ++i) {
                const auto eq = args[i].find('=');
                const std::string k = args[i].substr(0, eq);
                const std::string v = eq == std::string::npos ? "" : args[i].substr(eq + 1);
                match = match && (k == "kind" ? r.kind == v : field(r, k.c_str()) == v);
            }
            if (!match)
                continue;
            out << r.seq << " " << r.time << (r.clockSynchronized ? "" : " (clock unsynchronised)")
                << " " << r.kind << " account=" << printable(field(r, "account"));
            for (const char* k : {"queue_id", "provider_id", "provider_message_ids"})
                if (!field(r, k).empty())
                    out << " " << k << "=" << printable(field(r, k));
            if (r.size > 0)
                out << " size=" << r.size;
            out << "\n";
        }
        return 0;
    }
    if ((cmd == "show" || cmd == "export") && args.size() == 2) {
        const archive::Record* r = find(all, args[1]);
        if (!r) {
            err << "demailctl archive " << cmd << ": no record " << printable(args[1]) << "\n";
            return 1;
        }
        if (cmd == "show") {
            out << "seq: " << r->seq << "\ntime: " << r->time
                << "\nclock_synchronized: " << (r->clockSynchronized ? "yes" : "no")
                << "\nkind: " << r->kind << "\n";
            for (const auto& [k, v] : r->fields)
                out << k << ": " << printable(v) << "\n";
            out << "size: " << r->size << "\nsha256: " << r->sha256 << "\nprev: " << r->prev
                << "\nhash: " << r->hash << "\n";
            if (r->size > 0)
                out << "bytes: " << archive::bytesPath(dir, *r) << "\n";
            return 0;
        }
        // export: the bytes, exactly as kept, to standard output.
        if (r->size == 0) {
            err << "demailctl archive export: record " << r->seq << " has no bytes\n";
            return 1;
        }
        std::ifstream in(archive::bytesPath(dir, *r), std::ios::binary);
        if (!in) {
            err << "demailctl archive export: the bytes of record " << r->seq
                << " are missing (run demailctl archive verify)\n";
            return 1;
        }
        out << in.rdbuf();
        return 0;
    }
    err << "usage: demailctl archive list [kind=K] [queue_id=ID] [account=A] ...\n"
           "       demailctl archive show|export SEQ\n"
           "       demailctl archive verify\n";
    return 2;
}

}  // namespace demail::gateway
