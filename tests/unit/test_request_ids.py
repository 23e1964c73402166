"""Request ids: 128 random bits as 32 hex digits, never repeated, also not by a forked worker."""

import os
import re

from app.plugins.access import _RandomIds


def test_ids_are_random_hex_and_never_repeat_across_blocks() -> None:
    ids = _RandomIds()
    made = [ids.new() for _ in range(1000)]  # about four blocks of the OS generator's bytes
    assert all(re.fullmatch(r"[0-9a-f]{32}", made_id) for made_id in made)
    assert len(set(made)) == len(made)


def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    ids = _RandomIds()
    ids.new()  # a block is drawn before the fork: the child must not reuse the rest of it
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  # (the child)
        os.write(write, ids.new().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    assert re.fullmatch(r"[0-9a-f]{32}", from_child)
    assert from_child != ids.new()
