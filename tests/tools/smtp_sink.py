#!/usr/bin/python3
"""An SMTP server for tests that keeps what it receives: the internal mail server the gateway
delivers to. Built on Debian's python3-aiosmtpd (importable only from /usr/bin/python3).

  smtp_sink.py --dump DIR --port-file F [--cert C --key K] [--require-tls]
               [--rcpt-reply "550 5.1.1 no such user"] [--data-reply "451 4.3.0 later"]
               [--data-delay SECONDS [--commit-first]]

Listens on 127.0.0.1 on a free port and writes the port to --port-file once ready. Each accepted
message becomes DIR/<n>.eml with the envelope in X-Sink-* lines first and whether it came over
TLS, so tests can assert on it. SIGTERM ends it.
"""
import argparse
import asyncio
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, args):
        self.args = args
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.args.rcpt_reply:
            return self.args.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.args.data_reply:
            return self.args.data_reply
        if self.args.data_delay and not self.args.commit_first:
            # a slow internal server: widens the window a crash can hit
            await asyncio.sleep(self.args.data_delay)
        self.count += 1
        tls = "yes" if session.ssl else "no"
        path = os.path.join(self.args.dump, "%06d.eml" % self.count)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            sender = envelope.mail_from.strip("<>")  # aiosmtpd keeps the null path as "<>"
            f.write(("X-Sink-Mail-From: <%s>\r\n" % sender).encode())
            for r in envelope.rcpt_tos:
                f.write(("X-Sink-Rcpt-To: <%s>\r\n" % r).encode())
            f.write(("X-Sink-TLS: %s\r\n" % tls).encode())
            f.write(envelope.original_content)
        os.rename(tmp, path)
        if self.args.data_delay and self.args.commit_first:
            # As a real MTA: the message is kept (Postfix: in its queue) before the 250 is sent, so
            # a client that dies while waiting for the reply leaves a delivered message behind.
            await asyncio.sleep(self.args.data_delay)
        return "250 2.0.0 Ok: queued as sink%06d" % self.count


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dump", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--port", type=int, default=0)  # 0: any free port
    p.add_argument("--host", default="127.0.0.1")  # ::1 for an IPv6 relay
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--rcpt-reply")
    p.add_argument("--data-reply")
    p.add_argument("--data-delay", type=float, default=0.0)  # seconds before the reply to DATA
    p.add_argument("--commit-first", action="store_true")  # keep the message, then the delay
    args = p.parse_args()
    os.makedirs(args.dump, exist_ok=True)

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    handler = Handler(args)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, tls_context=context, require_starttls=args.require_tls,
                     decode_data=False, enable_SMTPUTF8=True, hostname="sink.internal.test"),
        host=args.host, port=args.port, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.rename(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
