"""`omnistream broker`: a local, in-memory Kafka-compatible broker (Tansu) in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from omnistream.cli.common import console, fail, load_settings, port_free, tail, terminate_like_ctrl_c


def broker(
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Port [default: that of OMNISTREAM_KAFKA_BROKERS].")
    ] = None,
) -> None:
    """Run a local, in-memory Kafka-compatible broker (Tansu) in the foreground until Ctrl-C."""
    settings = load_settings()
    from omnistream.stack import start_broker

    if port is None:
        port = int(settings.broker_list[0].rpartition(":")[2])
    if not port_free("127.0.0.1", port):
        fail(f"port {port} is in use (a broker may already run there); choose another with --port")
    with terminate_like_ctrl_c():
        try:
            service = start_broker(port)
        except (RuntimeError, ImportError, OSError) as ex:
            fail(f"the broker did not start: {ex}")
        try:
            console.print(f"Kafka broker (Tansu, in memory) at [bold]{service.address}[/]; Ctrl-C stops it")
            console.print(f"  export OMNISTREAM_KAFKA_BROKERS={service.address}", highlight=False)
            assert service.proc is not None
            code = service.proc.wait()
            fail(f"the broker exited with code {code}; its log: {service.log_path}\n{tail(service.log_path)}")
        except KeyboardInterrupt:
            console.print("stopping the broker")
        finally:
            service.stop()
