"""The local judge's server process: the upstream llama.cpp server (``xllamacpp``) until SIGTERM.

:class:`rftjudge.local.LocalJudgeServer` runs ``python -m rftjudge._llamacpp_serve ...`` as a child
process rather than starting ``xllamacpp.Server`` in the caller's process: native code that crashes
(or a model that takes the machine's memory) then takes down a process we can see die and report,
not the training job; stopping is a signal with a deadline, and the server's log goes to a file
instead of the caller's terminal.

The API key, when there is one, arrives in the environment (``RFTJUDGE_LOCAL_API_KEY``), never on
the command line that ``ps`` shows to every user of the machine. The parent holds this process's
standard input open: when it closes (the parent exited, even by SIGKILL) the server stops too, so
a killed training job never leaves an orphaned server holding its port and cores.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

API_KEY_ENV = "RFTJUDGE_LOCAL_API_KEY"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m rftjudge._llamacpp_serve")
    parser.add_argument("--model", required=True, help="GGUF file")
    parser.add_argument("--alias", action="append", required=True, help="model names served")
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n_ctx", type=int, required=True, help="context shared by all slots")
    parser.add_argument("--n_parallel", type=int, default=1, help="slots (concurrent requests)")
    parser.add_argument("--n_threads", type=int, default=None)
    parser.add_argument("--repeat_penalty", type=float, default=1.0, help="default for requests")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = set(args.alias)
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.n_ctx
    params.n_parallel = args.n_parallel
    if args.n_threads is not None:
        params.cpuparams.n_threads = args.n_threads
        params.cpuparams_batch.n_threads = args.n_threads
    params.sampling.penalty_repeat = args.repeat_penalty
    key = os.environ.get(API_KEY_ENV)
    if key:
        params.api_keys = [key]
    # Block the stop signals before the server starts its threads (they inherit the mask), so
    # that only sigwait below sees them and the server is shut down by its own destructor.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    threading.Thread(target=_stop_when_orphaned, daemon=True).start()
    server = xllamacpp.Server(params)  # loads the model, then listens
    print(f"rftjudge: serving on {server.listening_address}", flush=True)
    signal.sigwait(stop)
    del server  # waits for the server's loop to exit
    return 0


def _stop_when_orphaned() -> None:
    """Standard input reaches end of file when the parent closes it or dies: stop then."""
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)  # blocked in every thread: sigwait receives it


if __name__ == "__main__":
    sys.exit(main())
