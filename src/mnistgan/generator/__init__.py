"""The saved generator: its format (format.py), loading and seeded sampling (sample.py), the image
writers (images.py) and latent interpolation (interpolate.py).

    load_generator(DIR) -> Generator with .predict(z) (the course API) and .generate(n, seed)
    generate(DIR, n=25, seed=504, out=None) -> uint8 images (n, 28, 28)
"""

from .sample import COURSE_SEED, Generator, course_noise, generate, load_generator

__all__ = ["COURSE_SEED", "Generator", "course_noise", "generate", "load_generator"]
