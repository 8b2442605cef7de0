#include "sim_process.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace demail::connector::testing {

SimProcess::SimProcess(const std::vector<std::string>& extraArgs) {
    char tmpl[] = "/tmp/h4-sim.XXXXXX";
    if (!mkdtemp(tmpl))
        throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    std::string state = dir_ + "/state", log = dir_ + "/sim.log";
    std::string bin = DEMAIL_SIM_BINARY;
    std::vector<const char*> argv = {bin.c_str(), "provider",    "--state",   state.c_str(),
                                     "--listen",  "127.0.0.1:0", "--control", "127.0.0.1:0"};
    for (const std::string& a : extraArgs)
        argv.push_back(a.c_str());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc =
        posix_spawn(&pid_, bin.c_str(), &fa, nullptr, const_cast<char**>(argv.data()), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        throw std::runtime_error("cannot start " + bin);
    for (int i = 0; i < 200; ++i) {  // readiness, not timing: sim.env appears when listening
        std::ifstream in(state + "/sim.env");
        if (in) {
            std::string line;
            while (std::getline(in, line))
                if (auto eq = line.find('='); eq != std::string::npos)
                    env_[line.substr(0, eq)] = line.substr(eq + 1);
            return;
        }
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;
            throw std::runtime_error("demail-sim exited early, see " + log);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("demail-sim did not become ready");
}

SimProcess::~SimProcess() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        int status = 0;
        for (int i = 0; i < 100 && waitpid(pid_, &status, WNOHANG) == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (waitpid(pid_, &status, WNOHANG) == 0) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
}

std::string SimProcess::env(const std::string& key) const {
    auto it = env_.find(key);
    return it == env_.end() ? std::string{} : it->second;
}

ProviderEndpoint SimProcess::endpoint() const {
    return ProviderEndpoint{"custom", env("URL"), env("CA"), env("SERVER_NAME"), {}};
}

std::string SimProcess::control(const std::string& method, const std::string& path,
                                const std::string& body, int* status) const {
    Poco::Net::HTTPClientSession s("127.0.0.1",
                                   static_cast<Poco::UInt16>(std::stoi(env("CONTROL_PORT"))));
    Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    req.setContentLength(static_cast<std::streamsize>(body.size()));
    s.sendRequest(req) << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = s.receiveResponse(resp);
    std::string out;
    Poco::StreamCopier::copyToString(in, out);
    if (status)
        *status = resp.getStatus();
    return out;
}

void SimProcess::setFault(const std::string& json) const {
    int status = 0;
    control("POST", "/control/fault", json, &status);
    if (status != 200)
        throw std::runtime_error("fault not accepted: " + json);
}

long SimProcess::stat(const std::string& name) const {
    return jsonNumber(control("GET", "/control/stats"), name);
}

long jsonNumber(const std::string& json, const std::string& key) {
    auto pos = json.find("\"" + key + "\":");
    if (pos == std::string::npos)
        return -1;
    return std::strtol(json.c_str() + pos + key.size() + 3, nullptr, 10);
}

int countOf(const std::string& text, const std::string& needle) {
    int n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + needle.size()))
        ++n;
    return n;
}

}  // namespace demail::connector::testing
