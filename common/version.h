/* version: the iotrules release every binary reports with --version. */
#ifndef IOTRULES_VERSION_H
#define IOTRULES_VERSION_H

#define IOTRULES_VERSION "0.11.0"

#endif
