/* version.h — the version of guardiand and guardctl, in one place: the
 * daemon reports it (--version, VERSION channels, status, the boot record)
 * and guardctl prints it. */
#ifndef GUARDIAND_VERSION_H
#define GUARDIAND_VERSION_H

#define GUARDIAND_VERSION "0.2.0"

#endif
