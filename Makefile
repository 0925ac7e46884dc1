# Makefile for tenant_airbyte (PGXS)
#
#   make                  build the extension library and the webhook shim
#   make install          install both beside PostgreSQL
#   make uninstall        remove every file make install put there
#   make installcheck     pg_regress suite against a running server
#   test/run              every suite on a throwaway cluster (what CI runs)

EXTENSION = tenant_airbyte
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big = tenant_airbyte
# src/ holds a folder per part of the design (see doc/architecture.md); the
# shim in src/webhookd is a program of its own with its own Makefile.
SRC_DIRS = $(filter-out src/webhookd/,$(sort $(dir $(wildcard src/*/*.c))))
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard $(addsuffix *.c,$(SRC_DIRS)))))

# The install script and every upgrade script live in sql/ beside the
# pg_regress inputs; a regression test is any other file in sql/.
DATA = $(wildcard sql/$(EXTENSION)--*.sql)
REGRESS = $(sort $(basename $(notdir $(filter-out $(DATA),$(wildcard sql/*.sql)))))

PG_CPPFLAGS = $(addprefix -I$(srcdir)/,$(SRC_DIRS)) -DTENANT_AIRBYTE_VERSION=\"$(EXTVERSION)\"
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK = -lcurl -lcrypto

EXTRA_CLEAN = results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: rebuild every object when a
# header changes, rather than link a stale one.
$(OBJS): $(wildcard $(addsuffix *.h,$(SRC_DIRS)))

# The webhook shim is its own program with its own Makefile (PGXS allows
# one module or program per Makefile).
ifneq ($(wildcard src/webhookd/Makefile),)
all: webhookd
webhookd:
	$(MAKE) -C src/webhookd PG_CONFIG=$(PG_CONFIG)
install: install-webhookd
install-webhookd: webhookd
	$(MAKE) -C src/webhookd PG_CONFIG=$(PG_CONFIG) install
uninstall: uninstall-webhookd
uninstall-webhookd:
	$(MAKE) -C src/webhookd PG_CONFIG=$(PG_CONFIG) uninstall
clean: clean-webhookd
clean-webhookd:
	$(MAKE) -C src/webhookd PG_CONFIG=$(PG_CONFIG) clean
.PHONY: webhookd install-webhookd uninstall-webhookd clean-webhookd
endif
