#include "demail/gateway/metrics.h"

#include <cmath>
#include <sstream>

namespace demail::gateway {

std::string escapeLabel(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"')
            out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

namespace {

std::string formatValue(double v) {
    if (std::isnan(v))
        return "NaN";
    std::ostringstream s;
    s.precision(17);
    s << v;
    return s.str();
}

}  // namespace

Metrics::Counter& Metrics::counter(const std::string& name, const std::string& help,
                                   const std::string& label, const std::string& labelValue) {
    std::lock_guard lock(mutex_);
    Family& f = families_[name];
    if (f.help.empty())
        f.help = help;
    f.isCounter = true;
    const std::string key = label.empty() ? "" : label + "=\"" + escapeLabel(labelValue) + "\"";
    auto& slot = f.counters[key];
    if (!slot)
        slot = std::make_unique<Counter>();
    return *slot;
}

Metrics::Gauge& Metrics::gauge(const std::string& name, const std::string& help) {
    std::lock_guard lock(mutex_);
    Family& f = families_[name];
    if (f.help.empty())
        f.help = help;
    f.isCounter = false;
    if (!f.gauge)
        f.gauge = std::make_unique<Gauge>();
    return *f.gauge;
}

std::vector<Metrics::Sample> Metrics::samples() const {
    std::lock_guard lock(mutex_);
    std::vector<Sample> out;
    for (const auto& [name, f] : families_) {
        if (f.isCounter) {
            for (const auto& [labels, c] : f.counters)
                out.push_back({labels.empty() ? name : name + "{" + labels + "}",
                               static_cast<double>(c->value())});
        } else if (f.gauge) {
            out.push_back({name, f.gauge->value()});
        }
    }
    return out;
}

std::string Metrics::prometheusText() const {
    std::ostringstream out;
    std::lock_guard lock(mutex_);
    for (const auto& [name, f] : families_) {
        out << "# HELP " << name << " " << f.help << "\n";
        out << "# TYPE " << name << " " << (f.isCounter ? "counter" : "gauge") << "\n";
        if (f.isCounter) {
            for (const auto& [labels, c] : f.counters)
                out << name << (labels.empty() ? "" : "{" + labels + "}") << " " << c->value()
                    << "\n";
        } else if (f.gauge) {
            out << name << " " << formatValue(f.gauge->value()) << "\n";
        }
    }
    return out.str();
}

}  // namespace demail::gateway
