"""``python -m jaxsr.models --list [--json]``: the model zoo with sizes and costs.

For every registered model prints the parameter count and GFLOPs per output
megapixel at its reference scale (x4; x3 for SRCNN, FSRCNN, ESPCN), from XLA's
cost analysis of the lowered forward pass (a multiply-add counts 2 FLOPs; see
:func:`jaxsr.models.registry.describe`). Discriminators and VGG19 are listed
per *input* megapixel on their training patch, with ``scale`` null.
"""

from __future__ import annotations

import argparse
import json
import sys

from jaxsr.models import registry


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='python -m jaxsr.models', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--list', action='store_true', help='list registered models')
  parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
  parser.add_argument('--kind', default='all', choices=['all', 'sr', 'discriminator', 'feature'])
  parser.add_argument('--lr-size', type=int, default=48,
                      help='LR side used for the FLOP count of SR models (default 48)')
  args = parser.parse_args(argv)
  if not args.list:
    parser.print_help()
    return 2
  rows = []
  for name in registry.list_models(args.kind):
    d = registry.describe(name, lr_size=args.lr_size)
    rows.append({'name': d['name'], 'kind': d['kind'], 'scale': d['scale'],
                 'params': d['params'], 'gflops_per_mp': round(d['gflops_per_mp'], 2),
                 'description': d['description']})
  if args.json:
    json.dump(rows, sys.stdout, indent=1)
    sys.stdout.write('\n')
    return 0
  print(f"{'name':22s} {'scale':>5s} {'params':>12s} {'GFLOPs/MP':>10s}  description")
  for r in rows:
    scale = f"x{r['scale']}" if r['scale'] else '-'
    print(f"{r['name']:22s} {scale:>5s} {r['params']:>12,d} {r['gflops_per_mp']:>10.1f}  "
          f"{r['description']}")
  return 0


if __name__ == '__main__':
  sys.exit(main())
