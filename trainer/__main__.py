"""``python -m trainer [train|prepare|evaluate|generate|export] ...`` (train when no command is given)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv.pop(0) if argv and not argv[0].startswith("-") else "train"
    if cmd == "train":
        from trainer.train import main as train

        return train(argv, prog="python -m trainer train")
    elif cmd == "prepare":
        from trainer.data import main as run
    elif cmd == "evaluate":
        from trainer.evaluate import main as run
    elif cmd == "generate":
        from trainer.generate import main as run
    elif cmd == "export":
        from trainer.export import main as run
    else:
        print(f"unknown command {cmd!r}: use train, prepare, evaluate, generate or export", file=sys.stderr)
        return 2
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
