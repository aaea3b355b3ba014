// The sizes and alignments of the structs TensorFlow Lite Micro places in the arena's persistent tail.
// Included by measure.cc (printed at run time) and by struct_sizes.cc (compiled only, for a Cortex-M
// target: the values are read back from the assembly).
#include "tensorflow/lite/core/c/builtin_op_data.h"
#include "tensorflow/lite/core/c/common.h"
#include "tensorflow/lite/micro/arena_allocator/recording_single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/fully_connected.h"
#include "tensorflow/lite/micro/kernels/pooling.h"
#include "tensorflow/lite/micro/kernels/reduce.h"
#include "tensorflow/lite/micro/kernels/softmax.h"
#include "tensorflow/lite/micro/kernels/svdf.h"
#include "tensorflow/lite/micro/kernels/add.h"
#include "tensorflow/lite/micro/kernels/mul.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/recording_micro_allocator.h"
#include "tensorflow/lite/micro/tflite_bridge/micro_error_reporter.h"

#define TFLM_STRUCTS(X)                          \
  X(TfLiteEvalTensor)                            \
  X(TfLiteNode)                                  \
  X(TFLMRegistration)                            \
  X(tflite::NodeAndRegistration)                 \
  X(TfLiteTensor)                                \
  X(TfLiteAffineQuantization)                    \
  X(TfLiteIntArray)                              \
  X(TfLiteFloatArray)                            \
  X(tflite::ScratchBufferHandle)                 \
  X(tflite::SubgraphAllocations)                 \
  X(tflite::RecordingMicroAllocator)             \
  X(tflite::MicroAllocator)                      \
  X(tflite::RecordingSingleArenaBufferAllocator) \
  X(tflite::SingleArenaBufferAllocator)          \
  X(tflite::GreedyMemoryPlanner)                 \
  X(tflite::OpDataConv)                          \
  X(tflite::OpDataFullyConnected)                \
  X(tflite::OpDataPooling)                       \
  X(tflite::OpDataReduce)                        \
  X(tflite::OpDataSvdf)                          \
  X(tflite::OpDataAdd)                           \
  X(tflite::OpDataMul)                           \
  X(tflite::SoftmaxParams)                       \
  X(TfLiteConvParams)                            \
  X(TfLiteDepthwiseConvParams)                   \
  X(TfLitePoolParams)                            \
  X(TfLiteReducerParams)                         \
  X(TfLiteFullyConnectedParams)                  \
  X(TfLiteGatherParams)                          \
  X(TfLiteReshapeParams)                         \
  X(TfLiteSoftmaxParams)                         \
  X(TfLiteAddParams)                             \
  X(TfLiteMulParams)                             \
  X(TfLitePadParams)                             \
  X(TfLiteConcatenationParams)                   \
  X(TfLiteSVDFParams)                            \
  X(int64_t)                                     \
  X(double)                                      \
  X(void*)

#define TFLM_SIZE_VALUE(T) sizeof(T), alignof(T),
#define TFLM_SIZE_NAME(T) #T,
