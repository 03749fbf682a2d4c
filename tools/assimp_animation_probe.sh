#!/usr/bin/env bash
# What Assimp's glTF 2 exporter carries of an animation: builds a one-triangle scene with a node
# (TRS) animation, two morph targets and a morph-weight animation, exports it as .gltf, and prints
# what the file holds. Needs g++ and libassimp-dev. Usage: tools/assimp_animation_probe.sh
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/probe.cpp" <<'EOF'
#include <assimp/scene.h>
#include <assimp/Exporter.hpp>
#include <assimp/version.h>
#include <cstdio>
int main(int argc, char** argv) {
  aiScene* s = new aiScene();
  s->mRootNode = new aiNode(); s->mRootNode->mName = "root";
  aiNode* child = new aiNode(); child->mName = "object"; child->mParent = s->mRootNode;
  s->mRootNode->mNumChildren = 1; s->mRootNode->mChildren = new aiNode*[1]{child};
  child->mNumMeshes = 1; child->mMeshes = new unsigned[1]{0};
  s->mNumMaterials = 1; s->mMaterials = new aiMaterial*[1]{new aiMaterial()};
  s->mNumMeshes = 1; s->mMeshes = new aiMesh*[1];
  aiMesh* m = new aiMesh(); s->mMeshes[0] = m; m->mName = "object"; m->mPrimitiveTypes = aiPrimitiveType_TRIANGLE;
  m->mNumVertices = 3; m->mVertices = new aiVector3D[3]{{0, 0, 0}, {1, 0, 0}, {0, 1, 0}};
  m->mNumFaces = 1; m->mFaces = new aiFace[1]; m->mFaces[0].mNumIndices = 3; m->mFaces[0].mIndices = new unsigned[3]{0, 1, 2};
  // Two morph targets (absolute positions, as aiAnimMesh holds them).
  m->mNumAnimMeshes = 2; m->mAnimMeshes = new aiAnimMesh*[2];
  for (int k = 0; k < 2; k++) {
    aiAnimMesh* a = new aiAnimMesh(); a->mNumVertices = 3;
    a->mVertices = new aiVector3D[3]{{0, 0, float(k + 1)}, {1, 0, 0}, {0, 1, 0}};
    m->mAnimMeshes[k] = a;
  }
  aiAnimation* an = new aiAnimation(); an->mName = "motion"; an->mDuration = 2; an->mTicksPerSecond = 1;
  s->mNumAnimations = 1; s->mAnimations = new aiAnimation*[1]{an};
  // A node (TRS) channel...
  aiNodeAnim* na = new aiNodeAnim(); na->mNodeName = "object";
  na->mNumPositionKeys = 3; na->mPositionKeys = new aiVectorKey[3]{{0, {0, 0, 0}}, {1, {0, 1, 0}}, {2, {0, 0, 0}}};
  na->mNumRotationKeys = 1; na->mRotationKeys = new aiQuatKey[1]{{0, aiQuaternion()}};
  na->mNumScalingKeys = 1; na->mScalingKeys = new aiVectorKey[1]{{0, {1, 1, 1}}};
  an->mNumChannels = 1; an->mChannels = new aiNodeAnim*[1]{na};
  // ...and a morph-weight channel.
  aiMeshMorphAnim* mm = new aiMeshMorphAnim(); mm->mName = "object"; mm->mNumKeys = 2; mm->mKeys = new aiMeshMorphKey[2];
  for (int k = 0; k < 2; k++) {
    mm->mKeys[k].mTime = k; mm->mKeys[k].mNumValuesAndWeights = 2;
    mm->mKeys[k].mValues = new unsigned[2]{0, 1}; mm->mKeys[k].mWeights = new double[2]{k ? 0.0 : 1.0, k ? 1.0 : 0.0};
  }
  an->mNumMorphMeshChannels = 1; an->mMorphMeshChannels = new aiMeshMorphAnim*[1]{mm};
  printf("assimp %u.%u.%u\n", aiGetVersionMajor(), aiGetVersionMinor(), aiGetVersionPatch());
  Assimp::Exporter e;
  return e.Export(s, "gltf2", argv[1]) == aiReturn_SUCCESS ? 0 : 1;
}
EOF
g++ -std=c++17 "$work/probe.cpp" -o "$work/probe" -lassimp
"$work/probe" "$work/out.gltf"
python3 - "$work/out.gltf" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
paths = [c["target"]["path"] for a in d.get("animations", []) for c in a["channels"]]
targets = [t for m in d["meshes"] for p in m["primitives"] for t in p.get("targets", [])]
print("animation channel paths:", paths)
print("morph targets:", len(targets), "(as displacements)" if targets and d["accessors"][targets[0]["POSITION"]]["max"][0] == 0 else "")
print("morph weights animated:", "weights" in paths)
EOF
