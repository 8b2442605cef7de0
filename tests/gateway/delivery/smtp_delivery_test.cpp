// deliverBySmtp against a real SMTP server (Python's aiosmtpd, tests/tools/smtp_sink.py) with and
// without STARTTLS, refusing recipients or data, and with certificate checks.
#include "demail/gateway/smtp_delivery.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace demail::gateway;
namespace fs = std::filesystem;

namespace {

std::string readFile(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

int sh(const std::string& cmd) {
    return std::system(cmd.c_str());
}

// One temp dir per test with a CA, a server certificate for 127.0.0.1 and a second, foreign CA.
class Pki {
  public:
    explicit Pki(const fs::path& dir) : dir_(dir) {
        const std::string d = dir.string();
        const std::string script =
            "set -e; cd " + d +
            "; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
            "-subj /CN=relay-ca 2>/dev/null;"
            " openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 "
            "-subj /CN=other-ca 2>/dev/null;"
            " openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
            "-subj /CN=127.0.0.1 2>/dev/null;"
            " printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf;"
            " openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
            "-out server.pem -days 2 -extfile ext.cnf 2>/dev/null";
        if (sh(script) != 0)
            throw std::runtime_error("openssl failed");
    }
    std::string ca() const { return (dir_ / "ca.pem").string(); }
    std::string otherCa() const { return (dir_ / "other.pem").string(); }
    std::string cert() const { return (dir_ / "server.pem").string(); }
    std::string key() const { return (dir_ / "server.key").string(); }

  private:
    fs::path dir_;
};

class Sink {
  public:
    Sink(const fs::path& dir, std::vector<std::string> extra) : dump_(dir / "dump") {
        const fs::path portFile = dir / "port";
        std::vector<std::string> args = {"/usr/bin/python3", DEMAIL_SMTP_SINK, "--dump",
                                         dump_.string(),     "--port-file",    portFile.string()};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = fork();
        if (pid_ == 0) {
            std::vector<char*> argv;
            for (auto& a : args)
                argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            _exit(127);
        }
        for (int i = 0; i < 200 && !fs::exists(portFile); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (!fs::exists(portFile))
            throw std::runtime_error("smtp_sink.py did not start");
        port_ = static_cast<unsigned>(std::stoul(readFile(portFile)));
    }
    ~Sink() {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }
    unsigned port() const { return port_; }
    std::vector<std::string> messages() const {
        std::vector<std::string> out;
        if (!fs::exists(dump_))
            return out;
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(dump_))
            if (e.path().extension() == ".eml")
                files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const auto& f : files)
            out.push_back(readFile(f));
        return out;
    }

  private:
    fs::path dump_;
    pid_t pid_ = -1;
    unsigned port_ = 0;
};

const std::string kMessage =
    "From: De-Mail <poststelle@firma.de-mail.de>\r\nTo: <a@firma.de>\r\nSubject: Eingang\r\n\r\n"
    "first line\r\n.a line that starts with a dot\r\nlast line\r\n";

class SmtpDelivery : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/demail-delivery-XXXXXX";
        dir_ = mkdtemp(tmpl);
        pki_ = std::make_unique<Pki>(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::unique_ptr<Sink> sink(std::vector<std::string> extra) {
        fs::path d = dir_ / ("sink" + std::to_string(++sinks_));
        fs::create_directories(d);
        return std::make_unique<Sink>(d, std::move(extra));
    }
    std::vector<std::string> tlsArgs() const {
        return {"--cert", pki_->cert(), "--key", pki_->key()};
    }
    DeliveryResult send(unsigned port, bool requireTls, const std::string& ca = {},
                        const std::string& from = "poststelle@firma.de-mail.de",
                        const std::string& host = "127.0.0.1") {
        SmtpRelayTarget t;
        t.host = host;
        t.port = port;
        t.requireTls = requireTls;
        t.caFile = ca;
        t.heloName = "gateway.test";
        t.connectTimeout = std::chrono::seconds(5);
        t.totalTimeout = std::chrono::seconds(20);
        std::istringstream in(kMessage);
        return deliverBySmtp(t, from, {"a@firma.de"}, in);
    }

    fs::path dir_;
    std::unique_ptr<Pki> pki_;
    int sinks_ = 0;
};

}  // namespace

TEST_F(SmtpDelivery, RequiredTlsDeliversOverStartTlsAndKeepsDotLines) {
    auto s = sink(tlsArgs());
    const auto r = send(s->port(), true);
    ASSERT_TRUE(r.delivered()) << r.detail;
    EXPECT_EQ(r.replyCode, 250);
    const auto msgs = s->messages();
    ASSERT_EQ(msgs.size(), 1u);
    EXPECT_NE(msgs[0].find("X-Sink-TLS: yes"), std::string::npos);
    EXPECT_NE(msgs[0].find("X-Sink-Mail-From: <poststelle@firma.de-mail.de>"), std::string::npos);
    EXPECT_NE(msgs[0].find("\r\n.a line that starts with a dot\r\n"), std::string::npos);
}

TEST_F(SmtpDelivery, RequiredTlsWithoutStartTlsDefersAndSendsNothing) {
    auto s = sink({});
    const auto r = send(s->port(), true);
    EXPECT_EQ(r.outcome, DeliveryOutcome::Temporary);
    EXPECT_NE(r.detail.find("does not offer STARTTLS"), std::string::npos) << r.detail;
    EXPECT_TRUE(s->messages().empty());
}

TEST_F(SmtpDelivery, OpportunisticTlsFallsBackToPlainAndUsesTlsWhenOffered) {
    auto plain = sink({});
    ASSERT_TRUE(send(plain->port(), false).delivered());
    ASSERT_EQ(plain->messages().size(), 1u);
    EXPECT_NE(plain->messages()[0].find("X-Sink-TLS: no"), std::string::npos);

    auto tls = sink(tlsArgs());
    ASSERT_TRUE(send(tls->port(), false).delivered());
    ASSERT_EQ(tls->messages().size(), 1u);
    EXPECT_NE(tls->messages()[0].find("X-Sink-TLS: yes"), std::string::npos);
}

TEST_F(SmtpDelivery, RefusedRecipientIsPermanentAndTemporaryDataReplyIsTemporary) {
    auto refusing = sink({"--rcpt-reply", "550 5.1.1 <a@firma.de>: no such user"});
    const auto r = send(refusing->port(), false);
    EXPECT_EQ(r.outcome, DeliveryOutcome::Permanent);
    EXPECT_EQ(r.replyCode, 550);
    EXPECT_NE(r.detail.find("no such user"), std::string::npos) << r.detail;

    auto busy = sink({"--data-reply", "451 4.3.0 try again later"});
    const auto b = send(busy->port(), false);
    EXPECT_EQ(b.outcome, DeliveryOutcome::Temporary);
    EXPECT_EQ(b.replyCode, 451);
}

TEST_F(SmtpDelivery, CertificateIsVerifiedWhenACaIsConfigured) {
    auto s = sink(tlsArgs());
    EXPECT_TRUE(send(s->port(), true, pki_->ca()).delivered());
    const auto wrong = send(s->port(), true, pki_->otherCa());
    EXPECT_EQ(wrong.outcome, DeliveryOutcome::Temporary);
    EXPECT_EQ(s->messages().size(), 1u);
}

TEST_F(SmtpDelivery, NullReversePathForNotifications) {
    auto s = sink({});
    ASSERT_TRUE(send(s->port(), false, {}, "").delivered());
    ASSERT_EQ(s->messages().size(), 1u);
    EXPECT_NE(s->messages()[0].find("X-Sink-Mail-From: <>"), std::string::npos);
}

TEST_F(SmtpDelivery, NoListenerIsTemporary) {
    auto s = sink({});
    const unsigned port = s->port();
    s.reset();  // port now closed
    const auto r = send(port, false);
    EXPECT_EQ(r.outcome, DeliveryOutcome::Temporary);
    EXPECT_EQ(r.replyCode, 0);
}

TEST_F(SmtpDelivery, AnIpv6RelayIsReached) {
    // [delivery] relay = [::1]:PORT: the libcurl URL needs the brackets (issue 17.3).
    auto s = sink({"--host", "::1"});
    const auto r = send(s->port(), false, {}, "poststelle@firma.de-mail.de", "::1");
    ASSERT_TRUE(r.delivered()) << r.detail;
    EXPECT_EQ(s->messages().size(), 1u);
}
