"""exec and port-forward through the API server with the official Python
client (kubernetes-client/python), which speaks WebSocket
(v4.channel.k8s.io) where kubectl speaks SPDY. Prints what it saw, one
`key=value` per line, for test/e2e/cluster.sh to compare.

Usage: python_stream.py KUBECONFIG NAMESPACE EXEC_POD PORT_FORWARD_POD
"""

import sys

from kubernetes import client, config
from kubernetes.stream import portforward, stream


def main():
    kubeconfig, namespace, exec_pod, pf_pod = sys.argv[1:5]
    config.load_kube_config(config_file=kubeconfig)
    api = client.CoreV1Api()

    ws = stream(
        api.connect_get_namespaced_pod_exec,
        exec_pod,
        namespace,
        command=["sh", "-c", "echo out; echo err >&2; exit 3"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    ws.run_forever(timeout=30)
    print("stdout=" + ws.read_stdout().strip())
    print("stderr=" + ws.read_stderr().strip())
    print("returncode=%s" % ws.returncode)

    ws = stream(
        api.connect_get_namespaced_pod_exec,
        exec_pod,
        namespace,
        command=["sh", "-c", "read line; echo got $line"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    ws.write_stdin("from python\n")
    ws.run_forever(timeout=30)
    print("stdin=" + ws.read_stdout().strip())

    pf = portforward(
        api.connect_get_namespaced_pod_portforward, pf_pod, namespace, ports="8080"
    )
    sock = pf.socket(8080)
    sock.settimeout(30)
    sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
    reply = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    sock.close()
    print("portforward=" + reply.decode(errors="replace").split("\r\n\r\n", 1)[-1].strip())
    error = pf.error(8080)
    print("portforward_error=%s" % (error or ""))


if __name__ == "__main__":
    main()
