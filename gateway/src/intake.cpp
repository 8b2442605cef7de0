#include "demail/gateway/intake.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <Poco/Logger.h>

#include "demail/connector/message/demail_headers.h"
#include "demail/connector/message/net_size.h"
#include "demail/gateway/services/address_book.h"
#include "demail/smtp/server.h"

namespace demail::gateway {

bool addressInCidr(const std::string& address, const std::string& cidr) {
    const auto slash = cidr.find('/');
    const std::string net = cidr.substr(0, slash);
    unsigned char a[16], n[16];
    int family = AF_INET;
    std::size_t bytes = 4;
    if (net.find(':') != std::string::npos) {
        family = AF_INET6;
        bytes = 16;
    }
    if (inet_pton(family, address.c_str(), a) != 1 || inet_pton(family, net.c_str(), n) != 1)
        return false;
    int bits = static_cast<int>(bytes * 8);
    if (slash != std::string::npos) {
        try {
            bits = std::stoi(cidr.substr(slash + 1));
        } catch (const std::exception&) {
            return false;
        }
    }
    for (std::size_t i = 0; i < bytes && bits > 0; ++i, bits -= 8) {
        const unsigned char mask =
            bits >= 8 ? 0xFF : static_cast<unsigned char>(0xFF << (8 - bits));
        if ((a[i] & mask) != (n[i] & mask))
            return false;
    }
    return true;
}

IntakePolicy::IntakePolicy(std::vector<std::string> relayNetworks, SendingAuthority& authority,
                           std::vector<std::string> deMailDomains)
    : relayNetworks_(std::move(relayNetworks)),
      authority_(authority),
      domains_(std::move(deMailDomains)) {}

void IntakePolicy::setDeMailDomains(std::vector<std::string> domains) {
    std::lock_guard lock(mutex_);
    domains_ = std::move(domains);
}

void IntakePolicy::setAddressBook(std::shared_ptr<AddressBook> book) {
    std::lock_guard lock(mutex_);
    addressBook_ = std::move(book);
}

void IntakePolicy::setRelayNetworks(std::vector<std::string> networks) {
    std::lock_guard lock(mutex_);
    relayNetworks_ = std::move(networks);
}

bool IntakePolicy::relayAllowed(const smtp::SessionInfo& s) {
    if (!s.authUser.empty())
        return true;
    std::lock_guard lock(mutex_);
    for (const auto& net : relayNetworks_)
        if (addressInCidr(s.clientAddress, net))
            return true;
    return false;
}

void IntakePolicy::setCannotSend(std::function<std::string()> cannotSend) {
    std::lock_guard lock(mutex_);
    cannotSend_ = std::move(cannotSend);
}

void IntakePolicy::setRefuseWhenPaused(bool refuse) {
    std::lock_guard lock(mutex_);
    refuseWhenPaused_ = refuse;
}

smtp::Decision IntakePolicy::checkSender(const smtp::SessionInfo& s, const std::string& sender) {
    auto decision = authority_.checkSender(s, sender);
    if (!decision.accepted)
        return decision;  // a sender refused here is refused by every peer as well
    std::function<std::string()> cannotSend;
    {
        std::lock_guard lock(mutex_);
        if (refuseWhenPaused_)
            cannotSend = cannotSend_;
    }
    if (!cannotSend)
        return decision;
    const std::string why = cannotSend();  // asked without mutex_: it takes other locks
    if (why.empty())
        return decision;
    // The session's audit line (sender_refused, 451 4.3.2) records the refusal; /status says why.
    return smtp::Decision::refuse(
        smtp::Reply::Unavailable,
        "this gateway cannot send De-Mail now (" + why + "); try another gateway");
}

smtp::Decision IntakePolicy::checkRecipient(const smtp::SessionInfo& s, const std::string&,
                                            const std::string& recipient) {
    std::shared_ptr<AddressBook> book;
    {
        std::lock_guard lock(mutex_);
        if (!connector::isValidDeMailAddress(recipient) ||
            !connector::inDomains(recipient, domains_))
            return smtp::Decision::refuse(
                smtp::Reply::RecipientRefused,
                "<" + recipient + ">: not a De-Mail address; this gateway sends De-Mail only");
        book = addressBook_;
    }
    if (!book)
        return smtp::Decision::accept();
    // Asked without mutex_: a slow provider holds up this session only (at most the book's
    // timeout), never another session's MAIL or RCPT.
    const auto answer = book->check(recipient);
    const auto decision = recipientDecision(answer, recipient);
    if (!decision.accepted || answer.stale || answer.unchecked) {
        const char* what = answer.verdict == AddressBook::Verdict::Unknown
                               ? (answer.info.reason == "closed" ? "closed" : "unknown")
                           : answer.verdict == AddressBook::Verdict::Unavailable ? "unavailable"
                           : answer.stale ? "accepted_as_confirmed_before"
                                          : "accepted_unchecked";
        Poco::Logger::get("smtpd").notice(
            "event=recipient_check client=" + s.clientAddress +
            " rcpt=" + smtp::auditValue(recipient) + " result=" + what +
            (answer.why.empty() ? std::string() : " reason=" + smtp::auditValue(answer.why)));
    }
    return decision;
}

namespace {

// The header section is kept while it streams to the spool (up to kMaxHeaderSection), for the
// sending authority's look at the whole message before the 250.
constexpr std::size_t kMaxHeaderSection = 1u << 20;

std::string mebibytes(std::uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return buf;
}

class SpoolMessageWriter final : public smtp::MessageWriter {
  public:
    SpoolMessageWriter(std::unique_ptr<SpoolWriter> w, SpoolSink& sink, smtp::Envelope envelope)
        : w_(std::move(w)), sink_(sink), envelope_(std::move(envelope)) {}
    ~SpoolMessageWriter() override {
        if (sink_.authority())
            sink_.authority()->abandoned(ticket_);  // nothing if committed
    }
    const std::string& queueId() const override { return w_->queueId(); }
    bool write(const char* data, std::size_t n) override {
        if (sink_.authority() && !headerDone_)
            keepHeader(data, n);
        if (sink_.netSizeLimit() > 0)
            netSize_.feed(data, n);
        return w_->write(data, n);
    }
    smtp::Decision beforeCommit() override {
        if (sink_.netSizeLimit() > 0 && netSize_.netBytes() > sink_.netSizeLimit())
            return smtp::Decision::refuse(
                smtp::Reply::MessageTooBig,
                "the message carries " + mebibytes(netSize_.netBytes()) +
                    " of text and attachments (decoded); De-Mail allows " +
                    mebibytes(sink_.netSizeLimit()));
        if (!sink_.authority())
            return smtp::Decision::accept();
        if (headerTooLong_)
            return smtp::Decision::refuse(smtp::Reply::MessageRefused,
                                          "the header section is longer than 1 MiB");
        return sink_.authority()->checkMessage(envelope_, header_, w_->queueId(), ticket_);
    }
    bool commit() override {
        const auto id = w_->commit();
        if (id && sink_.authority())
            sink_.authority()->committed(ticket_);
        if (id && sink_.onCommitted)
            sink_.onCommitted(*id);
        return id.has_value();
    }
    smtp::SinkError error() const override {
        switch (w_->error()) {
            case SpoolError::None:
                return smtp::SinkError::None;
            case SpoolError::NoSpace:
                return smtp::SinkError::NoSpace;
            case SpoolError::TooLarge:
                return smtp::SinkError::TooLarge;
            case SpoolError::Io:
                return smtp::SinkError::Io;
        }
        return smtp::SinkError::Io;
    }
    std::string errorText() const override { return w_->errorText(); }

  private:
    void keepHeader(const char* data, std::size_t n) {
        header_.append(
            data, std::min(n, kMaxHeaderSection - std::min(header_.size(), kMaxHeaderSection)));
        // The session writes a line, then its CRLF: the section ends at the first empty line.
        const auto end = header_.find("\r\n\r\n", scanned_);
        if (end != std::string::npos) {
            header_.resize(end + 4);
            headerDone_ = true;
        } else {
            scanned_ = header_.size() < 3 ? 0 : header_.size() - 3;
            headerDone_ = headerTooLong_ = header_.size() >= kMaxHeaderSection;
        }
    }

    std::unique_ptr<SpoolWriter> w_;
    SpoolSink& sink_;
    const smtp::Envelope envelope_;
    std::string header_;
    std::size_t scanned_ = 0;
    bool headerDone_ = false, headerTooLong_ = false;
    connector::NetSizeCounter netSize_;
    DailyCounter::Ticket ticket_;
};

}  // namespace

std::unique_ptr<smtp::MessageWriter> SpoolSink::begin(const smtp::Envelope& e,
                                                      smtp::SinkError& error) {
    Envelope s;
    s.sender = e.sender;
    for (const auto& r : e.recipients)
        s.recipients.push_back({r.address, r.notify, r.orcpt});
    s.ret = e.ret;
    s.envid = e.envid;
    s.clientAddress = e.session.clientAddress;
    s.clientHelo = e.session.helo;
    s.authUser = e.session.authUser;
    s.tls = e.session.tls;
    s.arrival = e.arrival;
    auto w = spool_.begin(s);
    if (w->error() != SpoolError::None) {
        error = w->error() == SpoolError::NoSpace ? smtp::SinkError::NoSpace : smtp::SinkError::Io;
        return nullptr;
    }
    return std::make_unique<SpoolMessageWriter>(std::move(w), *this, e);
}

}  // namespace demail::gateway
