#include "demail/gateway/provider_pool.h"

namespace demail::gateway {

namespace {

// The failures that mean no HTTP reply came back: the provider (or the way to it) is down. A
// short body (our spool file ended early) and every answered request are not.
bool noAnswer(const connector::TransportError& e) {
    static const char* const codes[] = {"connect_refused", "connection_reset", "io_error",
                                        "timeout",         "tls_handshake",    "tls_io"};
    if (e.httpStatus != 0)
        return false;
    for (const char* c : codes)
        if (e.code == c)
            return true;
    return false;
}

}  // namespace

void ProviderReachability::record(const connector::TransportError* error) {
    std::lock_guard lock(mutex_);
    if (error && !noAnswer(*error)) {
        if (error->httpStatus != 0)
            noAnswers_ = 0;  // an answer, if not a welcome one
        return;              // our own side (no key, short body): says nothing of the provider
    }
    if (!error) {
        noAnswers_ = 0;
        return;
    }
    ++noAnswers_;
    lastReason_ = error->reason;
}

std::string ProviderReachability::unreachable() const {
    std::lock_guard lock(mutex_);
    return noAnswers_ >= kNoAnswersInARow ? lastReason_ : std::string();
}

ProviderConnectionPool::ProviderConnectionPool(Factory factory,
                                               connector::OutcomeResolution resolution,
                                               std::size_t connections)
    : factory_(std::move(factory)),
      resolution_(resolution),
      slots_(std::max<std::size_t>(connections, 1)) {}

template <typename Call>
auto ProviderConnectionPool::withConnection(Call call) {
    Slot* slot = nullptr;
    {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] {
            if (resetting_)
                return false;
            // A connection already open first: kept alive, it costs no card signature.
            for (auto& s : slots_)
                if (!s.busy && s.transport)
                    return (slot = &s), true;
            for (auto& s : slots_)
                if (!s.busy)
                    return (slot = &s), true;
            return false;
        });
        if (!slot->transport) {
            std::string why;
            slot->transport = factory_(why, lastSession_);  // no I/O until the first call
            if (!slot->transport)
                return decltype(call(*slot->transport))(connector::TransportError{
                    connector::ErrorKind::OperatorAction, "client_credentials",
                    why.empty() ? "the client key is not ready" : why, 0});
        }
        slot->busy = true;
    }
    auto result = call(*slot->transport);
    reachability_.record(result.ok() ? nullptr : &result.error());
    auto session = slot->transport->tlsSession();
    {
        std::lock_guard lock(mutex_);
        slot->busy = false;
        if (session && SSL_SESSION_is_resumable(session->sslSession()) == 1)
            lastSession_ = session;
    }
    changed_.notify_all();
    return result;
}

void ProviderConnectionPool::retire(Slot& slot) {
    if (!slot.transport)
        return;
    retired_.cardSignatures += slot.transport->counters().cardSignatures;
    retired_.fullHandshakes += slot.transport->counters().fullHandshakes;
    retired_.resumedHandshakes += slot.transport->counters().resumedHandshakes;
    slot.transport.reset();
}

void ProviderConnectionPool::reset() {
    std::unique_lock lock(mutex_);
    // No new call starts; the ones in flight finish with the old key first (the card reload
    // frees it right after this returns).
    changed_.wait(lock, [&] { return !resetting_; });
    resetting_ = true;
    changed_.wait(lock, [&] {
        for (const auto& s : slots_)
            if (s.busy)
                return false;
        return true;
    });
    for (auto& s : slots_)
        retire(s);
    lastSession_ = nullptr;  // established with the old key (or card): never resumed again
    resetting_ = false;
    lock.unlock();
    changed_.notify_all();
}

ProviderConnectionPool::Totals ProviderConnectionPool::totals() {
    std::lock_guard lock(mutex_);
    Totals t = retired_;
    for (const auto& s : slots_)
        if (s.transport) {  // counters are atomics: safe to read while a call runs
            t.cardSignatures += s.transport->counters().cardSignatures;
            t.fullHandshakes += s.transport->counters().fullHandshakes;
            t.resumedHandshakes += s.transport->counters().resumedHandshakes;
        }
    return t;
}

connector::Result<connector::Done> ProviderConnectionPool::open() {
    return withConnection([](connector::ProviderConnection& t) { return t.open(); });
}
connector::Result<connector::AccountListing> ProviderConnectionPool::listAccounts() {
    return withConnection([](connector::ProviderConnection& t) { return t.listAccounts(); });
}
connector::Result<connector::AddressInfo> ProviderConnectionPool::lookupAddress(
    const std::string& address) {
    return withConnection(
        [&](connector::ProviderConnection& t) { return t.lookupAddress(address); });
}
connector::Result<connector::SubmitReceipt> ProviderConnectionPool::submit(
    const connector::Submission& s) {
    return withConnection([&](connector::ProviderConnection& t) { return t.submit(s); });
}
connector::Result<std::optional<connector::SubmitReceipt>> ProviderConnectionPool::findSubmission(
    const std::string& account, const std::string& privateId) {
    return withConnection(
        [&](connector::ProviderConnection& t) { return t.findSubmission(account, privateId); });
}
connector::Result<std::vector<connector::InboundRef>> ProviderConnectionPool::listInbound(
    const std::string& account) {
    return withConnection([&](connector::ProviderConnection& t) { return t.listInbound(account); });
}
connector::Result<std::string> ProviderConnectionPool::fetch(const std::string& id) {
    return withConnection([&](connector::ProviderConnection& t) { return t.fetch(id); });
}
connector::Result<connector::Done> ProviderConnectionPool::acknowledge(const std::string& id) {
    return withConnection([&](connector::ProviderConnection& t) { return t.acknowledge(id); });
}

}  // namespace demail::gateway
