#include "demail/gateway/ctl_queue.h"

#include <iomanip>

#include "demail/gateway/dsn.h"
#include "demail/gateway/spool.h"
#include "demail/gateway/state_files.h"

namespace demail::gateway {

int runQueueCommand(const std::string& spoolDir, const std::vector<std::string>& args,
                    std::ostream& out, std::ostream& err) {
    Spool spool(spoolDir);
    if (args.empty()) {
        err << "usage: demailctl queue list | show ID | retry ID | delete ID\n";
        return 2;
    }
    const std::string& cmd = args[0];
    DispatchStateFiles states(spoolDir + "/dispatch");
    if (cmd == "list") {
        const auto ids = spool.list();
        for (const auto& id : ids) {
            const auto env = spool.envelope(id);
            if (!env) {
                out << id << "  (unreadable)\n";
                continue;
            }
            const DispatchState st = states.load(id);
            out << std::left << std::setw(24) << id << std::right << std::setw(10) << env->size
                << "  " << rfc5322Date(env->arrival) << "  <" << env->sender << ">\n";
            if (!st.lastError.empty())
                out << "    (" << (st.phase == DispatchState::Phase::Notify ? "bouncing: " : "")
                    << st.lastError << ", " << st.attempts << " attempts)\n";
            for (const auto& r : env->recipients)
                out << "    " << r.address << "\n";
        }
        out << "-- " << ids.size() << (ids.size() == 1 ? " message" : " messages") << "\n";
        return 0;
    }
    if (args.size() != 2) {
        err << "demailctl queue " << cmd << ": needs one queue id\n";
        return 2;
    }
    const std::string& id = args[1];
    const auto env = spool.envelope(id);
    if (!env) {
        err << "demailctl queue " << cmd << ": no message " << id << " in " << spoolDir
            << "/queue\n";
        return 1;
    }
    if (cmd == "show") {
        const DispatchState st = states.load(id);
        out << "queue id:  " << id << "\narrival:   " << rfc5322Date(env->arrival)
            << "\nsize:      " << env->size << "\nsender:    <" << env->sender << ">\n";
        for (const auto& r : env->recipients)
            out << "recipient: <" << r.address << ">"
                << (r.notify.empty() ? "" : " NOTIFY=" + r.notify)
                << (r.orcpt.empty() ? "" : " ORCPT=" + r.orcpt) << "\n";
        out << "client:    " << env->clientAddress << " (" << env->clientHelo << ")"
            << (env->authUser.empty() ? "" : " user " + env->authUser)
            << (env->tls.empty() ? "" : ", " + env->tls) << "\n";
        out << "attempts:  " << st.attempts
            << (st.lastError.empty() ? "" : ", last error: " + st.lastError) << "\n\n";
        auto body = spool.body(id);
        std::string line;
        while (body && std::getline(*body, line)) {  // the header section only
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            if (line.empty())
                break;
            out << line << "\n";
        }
        return 0;
    }
    if (cmd == "retry") {
        DispatchState st = states.load(id);
        st.nextAttempt = TimePoint{};
        const std::string e = states.save(id, st);
        if (!e.empty()) {
            err << "demailctl queue retry: " << e << "\n";
            return 1;
        }
        out << id << " will be tried at the next dispatcher pass\n";
        return 0;
    }
    if (cmd == "delete") {
        if (!spool.remove(id)) {
            err << "demailctl queue delete: cannot remove " << id << "\n";
            return 1;
        }
        states.remove(id);
        out << id << " deleted (no notification is sent)\n";
        return 0;
    }
    err << "demailctl queue: unknown command '" << cmd << "'\n";
    return 2;
}

}  // namespace demail::gateway
