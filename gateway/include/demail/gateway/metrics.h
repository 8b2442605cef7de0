// Counters and gauges the gateway exports on /metrics (Prometheus text format 0.0.4) and /status.
// Thread-safe: workers bump counters without locks; registration happens at start-up.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace demail::gateway {

// A label value in the Prometheus text format: backslash, double quote and newline escaped.
std::string escapeLabel(const std::string& v);

class Metrics {
  public:
    class Counter {
      public:
        void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
        // For totals another component counts (the SMTP server, the TLS layer): mirrors them.
        void mirror(std::uint64_t total) { value_.store(total, std::memory_order_relaxed); }
        std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

      private:
        std::atomic<std::uint64_t> value_{0};
    };
    class Gauge {
      public:
        void set(double v) { value_.store(v, std::memory_order_relaxed); }
        double value() const { return value_.load(std::memory_order_relaxed); }

      private:
        std::atomic<double> value_{0};
    };

    // Returns the series for name{label="value"}; the same arguments give the same series.
    // label may be empty for an unlabelled series. help is recorded at the first registration.
    Counter& counter(const std::string& name, const std::string& help,
                     const std::string& label = {}, const std::string& labelValue = {});
    Gauge& gauge(const std::string& name, const std::string& help);

    std::string prometheusText() const;

    struct Sample {
        std::string name;  // with labels, as in the text format
        double value;
    };
    std::vector<Sample> samples() const;

  private:
    struct Family {
        std::string help;
        bool isCounter = true;
        std::map<std::string, std::unique_ptr<Counter>> counters;  // key: rendered label set
        std::unique_ptr<Gauge> gauge;
    };
    mutable std::mutex mutex_;
    std::map<std::string, Family> families_;
};

}  // namespace demail::gateway
