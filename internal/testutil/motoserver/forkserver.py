"""A moto fork server for test runs: fresh moto servers in milliseconds.

Starting moto costs seconds of CPU every time: importing moto and its web stack, then, on each
service's first request, building that service's Flask app and loading its models (IAM's ~1,500
managed policies, EC2's default VPC and AMIs, SSM's public parameters). A test run starts a
private moto for nearly every test (moto's state is global per server), so that cost is paid
dozens of times. This server pays it once: it imports moto, answers one read-only request per
service the tests use, then forks a child per client. Each child starts from exactly that warm
state, which is what a fresh moto server holds after the same first requests, and serves on its
own loopback port.

Protocol (a Unix socket, path in argv[1]): a client connects and reads one line, "PID PORT\n"
(or "error: ...\n"); the child it names serves http://127.0.0.1:PORT until the client closes the
connection (or its process dies, which closes it), then exits. scripts/test.sh starts this
server and exports SSMKIT_MOTO_FORKSERVER; internal/testutil/motoserver uses it when it is set.
"""

import os
import signal
import socket
import sys
import threading

os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"

# The socket listens before the warm-up, so clients that connect early wait in the backlog
# instead of failing.
path = sys.argv[1]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(256)

from moto.server import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402
from werkzeug.test import Client  # noqa: E402

# One read-only request per service the tests call: it builds the service's app and backend
# for moto's default account in us-east-1, as the first request to a fresh server would.
WARM = [
    ("ec2", "Action=DescribeVpcs&Version=2016-11-15"),
    ("iam", "Action=ListRoles&Version=2010-05-08"),
    ("sts", "Action=GetCallerIdentity&Version=2011-06-15"),
    ("s3", None),
    ("logs", '{"logGroupNamePrefix": "warm"}', "Logs_20140328.DescribeLogGroups"),
    ("kms", "{}", "TrentService.ListKeys"),
    ("ssm", '{"MaxResults": 1}', "AmazonSSM.DescribeParameters"),
    ("route53", None),
    ("organizations", "{}", "AWSOrganizationsV20161128.DescribeOrganization"),
]


def warm(app):
    client = Client(app)
    for entry in WARM:
        service, body = entry[0], entry[1]
        auth = (
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/"
            + service
            + "/aws4_request, SignedHeaders=host, Signature=0"
        )
        headers = {"Authorization": auth, "Host": "127.0.0.1"}
        if service == "s3":
            client.get("/", headers=headers)
        elif service == "route53":
            client.get("/2013-04-01/hostedzone", headers=headers)
        elif len(entry) == 3:
            headers["X-Amz-Target"] = entry[2]
            headers["Content-Type"] = "application/x-amz-json-1.1"
            client.post("/", data=body, headers=headers)
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            client.post("/", data=body, headers=headers)


def app_factory():
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto.server's main does
    return app


APP = app_factory()
warm(APP)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
print("moto fork server ready on " + path, file=sys.stderr, flush=True)


def serve(conn, tcp):
    listener.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    import random

    from moto.moto_api._internal import mock_random

    # Children must not share the parent's random sequences: moto draws resource IDs from
    # mock_random, and two servers handing out the same IDs break tests (and code) that keep
    # IDs from several servers in one process, as AWS IDs are unique.
    random.seed()
    mock_random.seed()
    try:
        server = make_server("127.0.0.1", tcp.getsockname()[1], APP, threaded=True, fd=tcp.fileno())
    except Exception as e:  # noqa: BLE001
        conn.sendall(("error: %s\n" % e).encode())
        os._exit(1)
    os.environ["MOTO_PORT"] = str(server.port)

    def watch():
        try:
            while conn.recv(64):
                pass
        finally:
            os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    conn.sendall(("%d %d\n" % (os.getpid(), server.port)).encode())
    server.serve_forever()


while True:
    conn, _ = listener.accept()
    # The child's TCP socket is bound and listening before the fork, here, where nothing runs
    # concurrently: children that bound port 0 themselves (werkzeug sets SO_REUSEADDR) might,
    # between one's bind and its listen, be handed the same port. (That was suspected of the
    # EntityAlreadyExists / RouteAlreadyExists seen at sandbox start; the cause was the SDK
    # sending a call again after losing moto's quick answer, see awsapi.HTTPClient.)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(128)
    if os.fork() == 0:
        try:
            serve(conn, tcp)
        finally:
            os._exit(1)
    conn.close()
    tcp.close()
