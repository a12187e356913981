"""``tools/segment_folder.py``: segment every image of a folder.

    python tools/segment_folder.py INPUT CONFIG CHECKPOINT --out-dir DIR \
        [--overlay] [--recursive] [--batch-size N] [--device cpu] [--force]

Each image ``INPUT/a/b.jpg`` gives ``DIR/a/b.png``: one class index per
pixel (8-bit PNG; 16-bit with more than 256 classes), the image's size.
``--overlay`` also writes the image with the class colours painted over it
to ``DIR/overlays/a/b.png`` (``--overlay-dir`` to choose). Images are taken in
sorted order; consecutive images of one size are segmented together
(``--batch-size``). A file that cannot be read (not an image, truncated) or
segmented is reported and skipped, and the run goes on; the exit status is 1
if any failed. Existing outputs are kept and reported (a second run goes on
where the first stopped); ``--force`` replaces them. Every file is written
atomically. INPUT may also be a single image.
"""
import argparse
import os.path as osp
import sys
import time
from typing import List, Optional, Tuple

from ..apis import (
    IMAGE_EXTENSIONS,
    FileJob,
    find_images,
    init_model,
    plan_outputs,
    segment_files,
)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Segment every image of a folder: a label PNG per image, '
        'optionally colour overlays.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 2)[-1])
    parser.add_argument('input', help='folder of images (or one image)')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='training or deploy checkpoint')
    parser.add_argument('--out-dir', required=True,
                        help='folder of the label PNGs (created if needed)')
    parser.add_argument('--overlay', action='store_true',
                        help='also write colour overlays')
    parser.add_argument('--overlay-dir', default=None,
                        help='folder of the overlays (implies --overlay; '
                        'default: OUT_DIR/overlays)')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='opacity of the overlay colours, in (0, 1]')
    parser.add_argument('--device', default=None,
                        help='device used for inference (default: cuda:0 '
                        'where available, else cpu)')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='most images of one size per model call '
                        '(default: 1; on 2 CPU cores 4 were no faster: try '
                        'more on a GPU)')
    parser.add_argument('--recursive', action='store_true',
                        help='also segment the images of subfolders')
    parser.add_argument('--force', action='store_true',
                        help='replace existing outputs')
    parser.add_argument('--log-interval', type=int, default=20,
                        help='print progress every N images (default: 20)')
    args = parser.parse_args(argv)
    if not 0 < args.opacity <= 1:
        parser.error(f'--opacity must be in (0, 1]; got {args.opacity}.')
    if args.batch_size < 1 or args.log_interval < 1:
        parser.error('--batch-size and --log-interval must be >= 1.')
    if args.overlay_dir is None and args.overlay:
        args.overlay_dir = osp.join(args.out_dir, 'overlays')
    return args


def discover(args: argparse.Namespace) -> Tuple[str, List[str]]:
    """The input folder and its images, relative to it, sorted.

    Raises:
        ValueError: INPUT is missing, or holds no image.
    """
    if osp.isfile(args.input):
        return osp.dirname(args.input) or '.', [osp.basename(args.input)]
    if not osp.isdir(args.input):
        raise ValueError(f'{args.input!r} does not exist.')
    exclude = [d for d in (args.out_dir, args.overlay_dir) if d]
    images, others = find_images(args.input, args.recursive, exclude)
    if not images:
        hint = ('' if args.recursive else
                '; pass --recursive to look in subfolders')
        raise ValueError(
            f'No images in {args.input!r} ({len(others)} other files; '
            f'image extensions: {", ".join(sorted(IMAGE_EXTENSIONS))})'
            f'{hint}.')
    if others:
        print(f'{len(others)} files without an image extension are left '
              f'alone (e.g. {others[0]!r}).')
    return args.input, images


class Progress:
    """Counts, a line every ``interval`` images, and the summary."""

    def __init__(self, total: int, interval: int) -> None:
        self.total = total
        self.interval = interval
        self.done: List[FileJob] = []
        self.failed: List[FileJob] = []
        self.kept: List[FileJob] = []
        self.start = time.perf_counter()

    @property
    def segmented(self) -> int:
        return len(self.done)

    def rate(self) -> float:
        return self.segmented / max(time.perf_counter() - self.start, 1e-9)

    def update(self, job: FileJob) -> None:
        if job.error:
            self.failed.append(job)
            print(f'failed: {job.src}: {job.error}', file=sys.stderr,
                  flush=True)
        elif job.outputs:
            self.done.append(job)
        else:
            self.kept.append(job)
        seen = len(self.done) + len(self.failed) + len(self.kept)
        if seen % self.interval == 0 or seen == self.total:
            print(f'[{seen}/{self.total}] {self.segmented} segmented, '
                  f'{len(self.failed)} failed, {len(self.kept)} kept; '
                  f'{self.rate():.2f} images/s', flush=True)

    def summary(self, args: argparse.Namespace) -> str:
        seconds = time.perf_counter() - self.start
        lines = [f'Segmented {self.segmented} of {self.total} images in '
                 f'{seconds:.1f} s: {self.rate():.2f} images/s (reading, '
                 'inference and writing; model loading excluded).']
        if self.segmented:
            lines.append(f'Label maps: {args.out_dir}' + (
                f'; overlays: {args.overlay_dir}' if args.overlay_dir else
                ''))
        if self.kept:
            lines.append(f'{len(self.kept)} images already have all their '
                         'outputs, kept (pass --force to replace them).')
        if self.failed:
            lines.append(f'{len(self.failed)} images failed:')
            lines += [f'  {job.src}: {job.error}' for job in self.failed]
        return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        root, images = discover(args)
        jobs = plan_outputs(root, images, args.out_dir, args.overlay_dir,
                            args.force)
        partly = [job for job in jobs if job.kept and job.outputs]
        if partly:  # e.g. labels exist and --overlay is new
            print(f'{len(partly)} images have some outputs already: only '
                  'the missing ones are written.')
        # Nothing to write (a finished folder run again): no model needed.
        model = (init_model(args.config, args.checkpoint, device=args.device)
                 if any(job.outputs and not job.error for job in jobs) else
                 None)
    except (OSError, ValueError) as err:
        sys.exit(f'error: {err}')
    progress = Progress(len(jobs), args.log_interval)
    done = (segment_files(model, jobs, args.batch_size, args.opacity,
                          args.force) if model is not None else jobs)
    for job in done:
        progress.update(job)
    print(progress.summary(args))
    if progress.failed:
        sys.exit(1)
