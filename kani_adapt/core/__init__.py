"""Infrastructure: errors, atomic writes, folder locks, stop signals, console, devices, seeds,
hub resolution, model-file checks, espeak-ng and the tiny-model cache, the CLI kit, the preflight kit,
what strangers wrote made safe to show (untrusted).
Imports nothing of kani_adapt outside this folder."""
