// The persisted memory of PINs a card rejected (DESIGN.md "The card": a rejected PIN is never
// presented again by any process until the PIN changes). A rejection must outlive the process
// that saw it: a reload, a restart, a crash with Restart=on-failure and an operator's
// `demailctl provider probe` each used to log in afresh, and each cost the card a try.
//
// The record holds the token serials that rejected one PIN and an HMAC-SHA256 of that PIN under a
// random per-installation key kept beside it (`<path>.key`), never the PIN itself. Both files are
// mode 0600; written crash-safely (temporary file, fsync, rename, directory fsync). A process
// running as root gives new files the owner of their directory, so the service user can still
// read what `demailctl` wrote. A record for another PIN is removed when it is read: the PIN file
// changed, so the operator has acted.
#pragma once

#include <string>
#include <vector>

#include "demail/smartcard/secret.h"

namespace demail::smartcard {

class PinRejectionStore {
  public:
    explicit PinRejectionStore(std::string path);

    struct Entry {
        std::string serial;  // the token serial that rejected the PIN
        std::string kind;    // "wrong" or "blocked"
        int triesLeft = -1;  // when known at the time
    };
    struct Check {
        bool rejected = false;
        Entry entry;        // when rejected
        std::string error;  // the record exists but cannot be read or checked: do not log in
    };

    // Did the token `serial` reject exactly this PIN? Removes a record made for another PIN.
    Check check(const std::string& serial, const Secret& pin) const;
    // Adds `serial` to the rejections of this PIN (replacing a record for another PIN). Returns
    // an error text, empty on success.
    std::string record(const Entry& entry, const Secret& pin) const;

    const std::string& path() const { return path_; }
    std::string keyPath() const { return path_ + ".key"; }

  private:
    std::string path_;
};

}  // namespace demail::smartcard
