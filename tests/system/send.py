#!/usr/bin/python3
"""Sends COUNT messages through the gateway inside the system-test container, one SMTP session
each with STARTTLS, and records the subject of every message the gateway answered 250 for (one
line each in OUT, flushed at once). A refused connection or a dropped session (the daemon killed
or restarting) is retried until DEADLINE seconds have passed; a message is counted only once
answered 250, so OUT is exactly what the gateway took responsibility for.

  send.py PREFIX COUNT OUT [--from ADDR] [--deadline SECONDS] [--pause SECONDS]
  send.py PREFIX 1 OUT --from ADDR --expect-refused   exits 0 only if MAIL FROM gets a 5xx
"""
import argparse
import smtplib
import ssl
import time

p = argparse.ArgumentParser()
p.add_argument("prefix")
p.add_argument("count", type=int)
p.add_argument("out")
p.add_argument("--from", dest="sender", default="sachbearbeiter@firma.de")
p.add_argument("--to", default="amt@behoerde.de-mail.de")
p.add_argument("--deadline", type=float, default=180)
p.add_argument("--pause", type=float, default=0)
p.add_argument("--ca", default="/srv/demail-test/pki/ca.pem")
p.add_argument("--expect-refused", action="store_true")
a = p.parse_args()

ctx = ssl.create_default_context(cafile=a.ca)
end = time.monotonic() + a.deadline
with open(a.out, "a") as out:
    for i in range(a.count):
        subject = "%s-%03d" % (a.prefix, i)
        body = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nsystem test %s\r\n" % (a.sender, a.to, subject, subject)
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", 2525, local_hostname="mail.firma.test", timeout=30) as s:
                    s.starttls(context=ctx)
                    s.sendmail(a.sender, [a.to], body)
                out.write(subject + "\n")
                out.flush()
                break
            except smtplib.SMTPSenderRefused as e:
                if a.expect_refused:
                    print("%d %s" % (e.smtp_code, e.smtp_error.decode()))
                    raise SystemExit(0)
                raise SystemExit("%s refused: %s" % (subject, e))
            except (OSError, smtplib.SMTPException) as e:
                if isinstance(e, smtplib.SMTPResponseException) and 500 <= e.smtp_code < 600:
                    raise SystemExit("%s refused: %s" % (subject, e))
                if time.monotonic() > end:
                    raise SystemExit("%s not accepted within the deadline: %s" % (subject, e))
                time.sleep(0.3)
        if a.expect_refused:
            raise SystemExit("%s was accepted, expected a refusal" % subject)
        time.sleep(a.pause)
