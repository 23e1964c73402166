"""`make bench` / `python -m bench`: the gateway against talking to the upstream directly, on loopback.

Every figure is measured twice in one run, through the gateway and straight against the same fast Dify double
with the equivalent Dify request; the ratio gateway/direct is what holds on a noisy machine.
"""

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvloop

from bench.driver import StreamStats, http_request, run_streams

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
HOST = "127.0.0.1"
CLIENT_KEY = "sk-bench"
APP_KEY = "app-bench"

GATEWAY_CHAT = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Hello from the benchmark"}]})
GATEWAY_STREAM = json.dumps(
    {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Hello from the benchmark"}]}
)
GATEWAY_UNPACED = json.dumps(
    {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "unpaced, as fast as it goes"}]}
)
DIRECT_UNPACED = json.dumps(
    {"inputs": {}, "query": "unpaced, as fast as it goes", "user": "bench", "response_mode": "streaming"}
)
GATEWAY_SLOW = json.dumps({"model": "bench", "stream": True, "messages": [{"role": "user", "content": "slow please"}]})
DIRECT_CHAT = json.dumps(
    {"inputs": {}, "query": "Hello from the benchmark", "user": "bench", "response_mode": "blocking"}
)
DIRECT_STREAM = json.dumps(
    {"inputs": {}, "query": "Hello from the benchmark", "user": "bench", "response_mode": "streaming"}
)
DIRECT_SLOW = json.dumps({"inputs": {}, "query": "slow please", "user": "bench", "response_mode": "streaming"})


def _pinning() -> tuple[str, set[int]] | None:
    """With 4 cores or more, the gateway gets cores 0 and 1 and everything else (this driver, wrk, the upstream
    double) the rest, so two workers can use two whole cores; on fewer cores nothing is pinned, and the load
    shares the gateway's cores (the report says which)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 4 or shutil.which("taskset") is None:
        return None
    return f"{cpus[0]},{cpus[1]}", set(cpus[2:])


PINNED = _pinning()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, headers: dict[str, str] | None = None, contains: bytes = b"", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:  # noqa: S310
                if contains in response.read():
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def serve(target: str, port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """An upstream double under uvicorn."""
    command = [sys.executable, "-m", "uvicorn", target, "--host", HOST, "--port", str(port)]
    command += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    with launch(command, env) as process:
        yield process


@contextmanager
def launch(command: list[str], env: dict[str, str], cwd: str | Path = ROOT) -> Iterator[subprocess.Popen[bytes]]:
    # a gateway writing a line per request writes them where a service's logs go, not into the results
    stderr = subprocess.DEVNULL if env.get("LOG_LEVEL") == "INFO" else None
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT), **env}, stderr=stderr)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def upstream() -> Iterator[int]:
    port = free_port()
    with serve("bench.upstream:app", port, {"BENCH_SLOW_DELAY": "1.0", "BENCH_SLOW_CHUNKS": "10"}):
        wait_for(f"http://{HOST}:{port}/v1/info")
        yield port


@contextmanager
def tls_upstream() -> Iterator[tuple[int, str]]:
    """The same double behind TLS with HTTP/2 (hypercorn, ALPN h2 and http/1.1) and a throwaway certificate."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = f"{tmp}/cert.pem", f"{tmp}/key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
            check=True, capture_output=True,
        )  # fmt: skip
        command = [sys.executable, "-m", "hypercorn", "bench.upstream:app", "--bind", f"{HOST}:{port}"]
        command += ["--config", f"file:{ROOT / 'bench' / 'hypercorn_config.py'}"]
        command += ["--certfile", cert, "--keyfile", key, "--worker-class", "uvloop", "--log-level", "warning"]
        process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "BENCH_SLOW_DELAY": "1.0"})
        try:
            deadline = time.monotonic() + 30
            context = ssl.create_default_context(cafile=cert)
            while True:
                try:
                    with urllib.request.urlopen(f"https://{HOST}:{port}/v1/info", context=context, timeout=2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield port, cert
        finally:
            process.terminate()
            process.wait(timeout=10)


@contextmanager
def gateway(
    upstream_port: int,
    transport: str,
    workers: int = 1,
    cert: str | None = None,
    extra: dict[str, str] | None = None,
) -> Iterator[tuple[int, int]]:
    port = free_port()
    env = {
        "VALID_API_KEYS": CLIENT_KEY,
        "DIFY_API_KEYS": f"{APP_KEY}:chat",
        "DIFY_API_BASE": f"http://{HOST}:{upstream_port}/v1",
        "DIFY_TRANSPORT": transport,
        "DIFY_MAX_CONNECTIONS": "2000",
        "DIFY_KEEPALIVE": "4",  # below the double's uvicorn keep-alive (5 s)
        "LOG_LEVEL": "WARNING",
    }
    if cert is not None:  # HTTP/2 needs TLS here; the gateway trusts the throwaway certificate
        env |= {"DIFY_API_BASE": f"https://{HOST}:{upstream_port}/v1", "DIFY_HTTP2": "true", "SSL_CERT_FILE": cert}
    # started as `python -m app` starts it in production (app.server: the bounded protocol, uvloop)
    env |= {"SERVER_HOST": HOST, "SERVER_PORT": str(port), "WEB_CONCURRENCY": str(workers)}
    env |= extra or {}
    command = [sys.executable, "-m", "app"]
    if PINNED is not None:  # the gateway on cores of its own; the load and the upstream on the others
        command = ["taskset", "-c", PINNED[0], *command]
    with tempfile.TemporaryDirectory() as empty, launch(command, env, cwd=empty) as process:
        wait_for(f"http://{HOST}:{port}/v1/models", {"Authorization": f"Bearer {CLIENT_KEY}"}, b'"bench"')
        yield port, process.pid


# --- wrk ----------------------------------------------------------------------------------------------------


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, body: str, headers: dict[str, str], concurrency: int, duration: int) -> dict[str, float]:
    script = "wrk.method = 'POST'\nwrk.body = [[" + body + "]]\n"
    script += "".join(f"wrk.headers['{name}'] = '{value}'\n" for name, value in headers.items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    threads = 1 if concurrency < 4 else 2
    output = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", handle.name, url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    Path(handle.name).unlink()
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    if "50" not in latency or "99" not in latency:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    errors += sum(int(n) for n in sockets.groups()) if sockets else 0
    done = re.search(r"(\d+) requests in", output)
    return {
        "requests": float(done.group(1)) if done else 0.0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(latency["50"]),
        "p99_ms": _ms(latency["99"]),
        "errors": errors,
    }


# --- cases --------------------------------------------------------------------------------------------------


def _gateway_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"}


def _direct_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {APP_KEY}"}


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU a process has used (Linux /proc): what a request or a chunk costs, whatever the rate."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """The CPU of a process and its children (uvicorn's workers under its supervisor)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return cpu_seconds(pid) + sum(cpu_seconds(int(child)) for child in children)


def non_streaming(
    gw: int, up: int, concurrency: int, duration: int, scheme: str = "http", *, pid: int | None = None
) -> dict[str, Any]:
    before = cpu_seconds(pid)
    through = wrk(f"http://{HOST}:{gw}/v1/chat/completions", GATEWAY_CHAT, _gateway_headers(), concurrency, duration)
    if pid is not None and through["requests"]:
        through["cpu_s_per_10k"] = (cpu_seconds(pid) - before) / through["requests"] * 10_000
    direct = wrk(f"{scheme}://{HOST}:{up}/v1/chat-messages", DIRECT_CHAT, _direct_headers(), concurrency, duration)
    return {"gateway": through, "direct": direct, "ratio": through["rps"] / direct["rps"]}


def _streams(port: int, path: str, body: str, headers: dict[str, str], **kwargs: Any) -> StreamStats:
    if kwargs.get("tls") is None:
        kwargs.pop("tls", None)
    request = http_request(HOST, port, path, body.encode(), headers)
    return uvloop.run(run_streams(HOST, port, request, **kwargs))


def _stream_figures(stats: StreamStats) -> dict[str, float]:
    return {
        "streams": stats.streams,
        "errors": stats.errors,
        "chunks_per_s": stats.events_per_second,
        "first_chunk_p50_ms": stats.first_chunk_p50_ms,
        "first_chunk_p99_ms": stats.first_chunk_ms(0.99),
    }


def streaming(
    gw: int,
    up: int,
    concurrency: int,
    duration: int,
    *,
    paced: bool = True,
    tls: ssl.SSLContext | None = None,
    pid: int | None = None,
) -> dict[str, Any]:
    gateway_body, direct_body = (GATEWAY_STREAM, DIRECT_STREAM) if paced else (GATEWAY_UNPACED, DIRECT_UNPACED)
    before = cpu_seconds(pid)
    through = _streams(
        gw, "/v1/chat/completions", gateway_body, _gateway_headers(), concurrency=concurrency, duration=duration
    )
    used = cpu_seconds(pid) - before
    direct = _streams(
        up, "/v1/chat-messages", direct_body, _direct_headers(), concurrency=concurrency, duration=duration, tls=tls
    )
    g, d = _stream_figures(through), _stream_figures(direct)
    chunks = g["chunks_per_s"] * duration
    if pid is not None and chunks:
        g["cpu_s_per_100k_chunks"] = used / chunks * 100_000
    return {
        "gateway": g,
        "direct": d,
        "ratio": g["chunks_per_s"] / d["chunks_per_s"],
        "added_first_chunk_p50_ms": g["first_chunk_p50_ms"] - d["first_chunk_p50_ms"],
    }


def _peak_rss(pid: int, stop: threading.Event, peak: list[int]) -> None:
    status = Path(f"/proc/{pid}/status")
    while not stop.is_set():
        match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
        if match:
            peak[0] = max(peak[0], int(match.group(1)) * 1024)
        stop.wait(0.1)


def open_streams(gw: int, gw_pid: int, up: int, count: int) -> dict[str, Any]:
    stop, peak = threading.Event(), [0]
    sampler = threading.Thread(target=_peak_rss, args=(gw_pid, stop, peak), daemon=True)
    sampler.start()
    through = _streams(gw, "/v1/chat/completions", GATEWAY_SLOW, _gateway_headers(), concurrency=count, total=count)
    stop.set()
    sampler.join()
    direct = _streams(up, "/v1/chat-messages", DIRECT_SLOW, _direct_headers(), concurrency=count, total=count)
    return {
        "streams": count,
        "gateway": {
            "completed": through.streams - through.errors,
            "errors": through.errors,
            "seconds": through.elapsed,
        },
        "direct": {"completed": direct.streams - direct.errors, "errors": direct.errors, "seconds": direct.elapsed},
        "gateway_peak_rss_mb": peak[0] / 1e6,
    }


# --- report -------------------------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    rows = ["| case | gateway | direct | gateway/direct |", "|---|---|---|---|"]
    for key, case in results["non_streaming"].items():
        g, d = case["gateway"], case["direct"]
        rows.append(
            f"| non-streaming c={key}: req/s (p50 / p99 ms) | {g['rps']:.0f} ({g['p50_ms']:.2f} / {g['p99_ms']:.2f}) "
            f"| {d['rps']:.0f} ({d['p50_ms']:.2f} / {d['p99_ms']:.2f}) | {case['ratio']:.1%} |"
        )
        if "cpu_s_per_10k" in g:
            rows.append(f"| non-streaming c={key}: gateway CPU s per 10,000 requests | {g['cpu_s_per_10k']:.2f} | | |")
    for key, case in results["streaming"].items():
        g, d = case["gateway"], case["direct"]
        rows.append(
            f"| streaming c={key}: chunks/s | {g['chunks_per_s']:.0f} | {d['chunks_per_s']:.0f} | {case['ratio']:.1%} |"
        )
        rows.append(
            f"| streaming c={key}: first chunk p50 ms | {g['first_chunk_p50_ms']:.2f} | {d['first_chunk_p50_ms']:.2f} "
            f"| +{case['added_first_chunk_p50_ms']:.2f} ms |"
        )
    for key, case in results.get("streaming_unpaced", {}).items():
        g, d = case["gateway"], case["direct"]
        rows.append(
            f"| streaming c={key}, upstream unpaced (CPU-bound): chunks/s | {g['chunks_per_s']:.0f} "
            f"| {d['chunks_per_s']:.0f} | {case['ratio']:.1%} |"
        )
        if "cpu_s_per_100k_chunks" in g:
            rows.append(
                f"| streaming c={key}, unpaced: gateway CPU s per 100,000 chunks | {g['cpu_s_per_100k_chunks']:.2f} | | |"
            )
    if "open_streams" in results:
        case = results["open_streams"]
        rows.append(
            f"| {case['streams']} open streams: completed (errors) | {case['gateway']['completed']} ({case['gateway']['errors']}) "
            f"| {case['direct']['completed']} ({case['direct']['errors']}) | RSS {case['gateway_peak_rss_mb']:.0f} MB |"
        )
    if "scaling" in results:
        case = results["scaling"]
        rows.append(
            f"| non-streaming c=32, 1 -> 2 workers: req/s | {case['one_worker_rps']:.0f} -> {case['two_workers_rps']:.0f} "
            f"| {case['direct_rps']:.0f} | {case['ratio_two_workers']:.1%} (x{case['speedup']:.2f}) |"
        )
        rows.append(
            f"| 2 workers: cores they got; CPU s per 10,000 requests | {case['two_workers_cores']:.2f}; "
            f"{case['two_workers_cpu_s_per_10k']:.2f} | | |"
        )
    for name, case in results.get("features", {}).items():
        g, d = case["gateway"], case["direct"]
        rows.append(
            f"| non-streaming c=32, {name}: req/s (p50 / p99 ms) | {g['rps']:.0f} ({g['p50_ms']:.2f} / {g['p99_ms']:.2f}) "
            f"| {d['rps']:.0f} ({d['p50_ms']:.2f} / {d['p99_ms']:.2f}) | {case['ratio']:.1%} |"
        )
    for transport, case in results.get("transports", {}).items():
        rows.append(
            f"| transport {transport}: non-streaming c=32 req/s; streaming chunks/s | {case['rps']:.0f}; {case['chunks_per_s']:.0f} "
            f"| {case['direct_rps']:.0f}; {case['direct_chunks_per_s']:.0f} | {case['rps_ratio']:.1%}; {case['chunks_ratio']:.1%} |"
        )
    return "\n".join(rows)


def compare_transport(up: int, transport: str, duration: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """`http2`: httpx's own transport over HTTP/2 (TLS) to a TLS upstream; direct figures use that upstream too."""
    if transport != "http2":
        with gateway(up, transport) as (gw, _):
            return non_streaming(gw, up, 32, duration), streaming(gw, up, 32, duration)
    with tls_upstream() as (tls_port, cert), gateway(tls_port, "httpx", cert=cert) as (gw, _):
        tls = ssl.create_default_context(cafile=cert)
        return non_streaming(gw, tls_port, 32, duration, "https"), streaming(gw, tls_port, 32, duration, tls=tls)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--transport", default="httptools", help="DIFY_TRANSPORT for the main run")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    parser.add_argument("--quick", action="store_true", help="non-streaming c=32 and streaming only")
    parser.add_argument("--transports", default="", help="comma-separated transports to compare (c=32 cases)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    results: dict[str, Any] = {"transport": args.transport, "duration_s": args.duration, "cpus": os.cpu_count()}
    results["gateway_pinned_to"] = PINNED[0] if PINNED is not None else None
    if PINNED is not None:
        os.sched_setaffinity(0, PINNED[1])  # this driver and what it starts (wrk, the upstream) off those cores
    with upstream() as up:
        with gateway(up, args.transport) as (gw, pid):
            levels = [32] if args.quick else [1, 32, 256]
            results["non_streaming"] = {str(c): non_streaming(gw, up, c, args.duration, pid=pid) for c in levels}
            results["streaming"] = {
                str(c): streaming(gw, up, c, args.duration, pid=pid) for c in ([32] if args.quick else [1, 32])
            }
            results["streaming_unpaced"] = {"32": streaming(gw, up, 32, args.duration, paced=False, pid=pid)}
            if not args.quick:
                results["open_streams"] = open_streams(gw, pid, up, 1000)
        if not args.quick:
            with gateway(up, args.transport, workers=2) as (gw2, pid2):
                before, started = tree_cpu_seconds(pid2), time.monotonic()
                two = wrk(
                    f"http://{HOST}:{gw2}/v1/chat/completions", GATEWAY_CHAT, _gateway_headers(), 32, args.duration
                )
                used, elapsed = tree_cpu_seconds(pid2) - before, time.monotonic() - started
            one = results["non_streaming"]["32"]
            results["scaling"] = {
                "one_worker_rps": one["gateway"]["rps"],
                "two_workers_rps": two["rps"],
                "direct_rps": one["direct"]["rps"],
                "ratio_two_workers": two["rps"] / one["direct"]["rps"],
                "speedup": two["rps"] / one["gateway"]["rps"],
                "errors": two["errors"],
                # what the workers got of the two cores (the load generator and the upstream take the rest), and
                # what a request cost them: the same as one worker's means the gateway scales with its cores
                "two_workers_cores": used / elapsed,
                "two_workers_cpu_s_per_10k": used / two["requests"] * 10_000 if two["requests"] else 0.0,
            }
        # what the operations features cost: metrics on, and an access line per request written (LOG_LEVEL=INFO)
        features: dict[str, Any] = {}
        for name, extra in (("metrics on", {"METRICS": "true"}), ("access lines on", {"LOG_LEVEL": "INFO"})):
            with gateway(up, args.transport, extra=extra) as (gwf, _):
                features[name] = non_streaming(gwf, up, 32, args.duration)
        results["features"] = features
        transports: dict[str, Any] = {}
        for transport in filter(None, args.transports.split(",")):
            chat, stream = compare_transport(up, transport, args.duration)
            transports[transport] = {
                "rps": chat["gateway"]["rps"],
                "direct_rps": chat["direct"]["rps"],
                "rps_ratio": chat["ratio"],
                "chunks_per_s": stream["gateway"]["chunks_per_s"],
                "direct_chunks_per_s": stream["direct"]["chunks_per_s"],
                "chunks_ratio": stream["ratio"],
                "errors": chat["gateway"]["errors"] + stream["gateway"]["errors"],
            }
        if transports:
            results["transports"] = transports
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    pinned = results["gateway_pinned_to"]
    print(
        f"\ngateway pinned to cores {pinned}"
        if pinned
        else "\nnothing pinned (fewer than 4 cores): the load shares them"
    )
    print(f"\nwritten to {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
