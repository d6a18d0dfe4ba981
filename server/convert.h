// Conversions between storage types and the dtabd.v1 protos.
//
// Thread-safety: pure functions.
#ifndef DTABD_SERVER_CONVERT_H_
#define DTABD_SERVER_CONVERT_H_

#include "dtabd/v1/dtab.pb.h"
#include "storage/dtab_store.h"

namespace dtabd::server {

void ToProto(const storage::VersionedDtab& v, v1::VersionedDtab* out);

}  // namespace dtabd::server

#endif  // DTABD_SERVER_CONVERT_H_
