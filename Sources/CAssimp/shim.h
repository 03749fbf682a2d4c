#ifndef KILN_CASSIMP_SHIM_H
#define KILN_CASSIMP_SHIM_H
// Assimp's C API: import, export, scene and material structs.
#include <assimp/cimport.h>
#include <assimp/cexport.h>
#include <assimp/scene.h>
#include <assimp/postprocess.h>
#include <assimp/material.h>
#include <assimp/version.h>
#endif
