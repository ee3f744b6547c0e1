/* migrations.h — private to store/: the schema migrations, generated from
 * schema/NNN_name.sql by tools/gen-schema.sh into build/gen/schema.c.
 *
 * store_migrations[i].version is i + 1; applying entry i to a database whose
 * PRAGMA user_version is i brings it to i + 1. */
#ifndef GUARDIAND_STORE_MIGRATIONS_H
#define GUARDIAND_STORE_MIGRATIONS_H

struct store_migration {
    int version;
    const char *name; /* "001_initial" */
    const char *sql;
};

extern const struct store_migration store_migrations[];
extern const unsigned store_n_migrations;

#endif
