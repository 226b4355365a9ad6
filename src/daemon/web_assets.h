#ifndef GPURM_DAEMON_WEB_ASSETS_H_
#define GPURM_DAEMON_WEB_ASSETS_H_

#include <span>

#include "api/static_assets.h"

namespace gpurm {

// The web dashboard (web/dist) as compiled into the binary: index.html and the
// content-hashed bundles it loads (generated at build time by
// web/embed_assets.cmake).
std::span<const StaticAsset> WebAssets();

}  // namespace gpurm

#endif  // GPURM_DAEMON_WEB_ASSETS_H_
