"""Evaluation as a script: ``python eval.py`` is ``jaxsr eval`` (``jaxsr.commands.evaluate``).

  python eval.py --model bicubic --datasets set5,set14 --scales 2,3,4 --protocol y
      --data-dir DIR [--output-json FILE]
  python eval.py --model bicubic --sr-dir EDSR=results/EDSR --checkpoint runs/mine \
      --datasets set5,set14 --scales 4 --format latex --report report/

``python eval.py --help`` lists the flags.
"""

from jaxsr.commands import evaluate

if __name__ == "__main__":
  evaluate.start(prog="eval.py")
