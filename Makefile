# Fresh machine: `make demo` or `make test` create .venv and install what they need: the demo only
# the core package, the tests every extra, torch and the system tools listed by `sysdeps`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORE := $(VENV)/.installed-core
DEMO := demo

.PHONY: demo test bench sysdeps clean baselines-leaderboard docs wheel-check

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned: a CPU wheel lies on these machines; an unpinned torch pulls a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,pose]'
	# madmom's trained onset/beat networks (models CC BY-NC-SA 4.0: an extra of its own, outside `all`)
	$(BIN)/pip install -q -e '.[madmom]'
	# encodec declares torchaudio (a torch build of its own): installed without it (docs/genre-fad.md)
	$(BIN)/pip install -q --no-deps encodec==0.1.1
	# laion_clap declares numpy<2 (and wandb): installed without its declared dependencies; the clap extra has what it imports
	$(BIN)/pip install -q --no-deps laion_clap==1.1.7
	# hear21passt declares timm (which imports torchvision) and torchaudio: installed without them
	$(BIN)/pip install -q --no-deps hear21passt==0.0.26
	# torchaudio's wheel, downloaded and never installed: test_embedders_passt reads its kaldi.py as
	# the reference of d2m-bench's mel-bank port (the test skips, saying so, when the wheel is absent)
	$(BIN)/pip download -q --no-deps --only-binary=:all: torchaudio==2.11.1 -d $(VENV)/reference \
	  || echo "torchaudio wheel not downloaded: the PaSST mel-bank reference test will skip"
	$(BIN)/python -m d2m_bench.features.kernels
	touch $(STAMP)

# The demo (default protocol, no dataset) needs neither torch nor any extra but `report` (matplotlib).
# librosa's numba kernels are compiled here, once per install, not in the first eval.
$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[report]'
	$(BIN)/python -m d2m_bench.features.kernels
	touch $(CORE)

# System tools for the MIDI rendering, survey (browser, spoken traps), video, LaTeX-table and fadtk-loading (sox) tests; the tests
# that need one skip with a reason if it is absent. One line names every package before apt-get runs.
sysdeps:
	@missing=""; \
	command -v fluidsynth >/dev/null || missing="$$missing fluidsynth"; \
	[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing="$$missing fluid-soundfont-gm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	python3 -c "import ctypes.util, sys; sys.exit(not ctypes.util.find_library('GL'))" 2>/dev/null || missing="$$missing libgl1"; \
	command -v pdflatex >/dev/null || missing="$$missing texlive-latex-base"; \
	kpsewhich booktabs.sty >/dev/null 2>&1 || missing="$$missing texlive-latex-recommended"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "sysdeps: apt-get install$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "sysdeps: could not install$$missing; the tests that need them will skip"; \
	  else echo "sysdeps: not root or no apt-get; missing:$$missing (tests that need them skip)"; fi; \
	fi

demo: $(CORE)
	$(BIN)/d2m-bench demo make $(DEMO) --force
	$(BIN)/d2m-bench eval --pred $(DEMO)/generated --gt $(DEMO)/gt --out $(DEMO)/result.json --csv $(DEMO)/per_clip.csv
	$(BIN)/d2m-bench eval --pred $(DEMO)/generated --gt $(DEMO)/gt --protocol tolerance --out $(DEMO)/result_tolerance.json
	@$(BIN)/d2m-bench report $(DEMO)/result.json --out-dir $(DEMO)/report --envelopes -q

# One pytest worker per core (pytest-xdist), a test file per worker at a time: module fixtures
# (random-weight networks, fake Hugging Face caches) are built once. About 11 min on 2 cores.
test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -q -n auto --dist loadfile
	$(MAKE) --no-print-directory wheel-check

# The wheel, installed into a fresh venv under $$TMPDIR (not .venv), scores the demo set from a
# folder outside the checkout (.ci/wheel_check.sh; about 1-2 min, most of it pip and numba).
wheel-check: $(STAMP)
	PY=$(PY) .ci/wheel_check.sh

# Every built-in baseline on the synthetic set -> results/runs/synthetic-*.json, then the leaderboard.
baselines-leaderboard: $(STAMP) sysdeps
	$(BIN)/python -m d2m_bench.baselines.leaderboard_runs --results results

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns every warning into an error
# (not with --quiet: mkdocs then stops counting warnings and exits 0 on a broken link).
# Only the docs extra: the hooks read the protocol files with the core package, mkdocstrings reads
# the API from the source without importing torch (about 0.9 GB instead of every extra's 3 GB).
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

bench: $(STAMP)
	$(BIN)/python -m pytest -o python_files='bench_*.py' d2m_bench_tests/benchmarks --benchmark-only --benchmark-columns=min,mean,max,rounds -q -s

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .benchmarks
