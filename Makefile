# Shortcuts for the two commands of the README.
.PHONY: serve test
serve:
	scripts/serve
test:
	scripts/test
