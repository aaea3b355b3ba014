// Loads a .tflite file into tflite-micro's RecordingMicroInterpreter and prints, as one JSON object,
// the arena it recorded (total / head / tail and each RecordedAllocationType), the smallest arena_size
// AllocateTensors accepts (each size tried in a child process, since some failures abort), and the
// sizes of the structs of struct_sizes.h in this build.
//   measure sizes
//   measure FILE.tflite [MAX_SCAN]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#include "struct_sizes.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

constexpr size_t kLargeArena = 16 * 1024 * 1024;
alignas(16) uint8_t arena[kLargeArena];

using Resolver = tflite::MicroMutableOpResolver<24>;

void Register(Resolver& r) {
  r.AddAdd();
  r.AddAveragePool2D();
  r.AddConcatenation();
  r.AddConv2D();
  r.AddDepthwiseConv2D();
  r.AddDequantize();
  r.AddFullyConnected();
  r.AddGather();
  r.AddHardSwish();
  r.AddLogistic();
  r.AddMaxPool2D();
  r.AddMean();
  r.AddMul();
  r.AddPad();
  r.AddQuantize();
  r.AddRelu();
  r.AddRelu6();
  r.AddReshape();
  r.AddSoftmax();
  r.AddSvdf();
  r.AddTranspose();
}

void PrintSizes() {
  static const unsigned values[] = {TFLM_STRUCTS(TFLM_SIZE_VALUE) 0u};
  static const char* names[] = {TFLM_STRUCTS(TFLM_SIZE_NAME) nullptr};
  printf("{\"pointer_bytes\": %u, \"default_tail_usage\": %u, \"structs\": {", (unsigned)sizeof(void*),
         (unsigned)tflite::RecordingMicroAllocator::GetDefaultTailUsage());
  for (int i = 0; names[i] != nullptr; ++i) {
    printf("%s\"%s\": [%u, %u]", i ? ", " : "", names[i], values[2 * i], values[2 * i + 1]);
  }
  printf("}}\n");
}

// 0 when AllocateTensors succeeds with an arena of `size` bytes starting at a 16-byte boundary.
int TryArena(const tflite::Model* model, size_t size) {
  Resolver resolver;
  Register(resolver);
  tflite::RecordingMicroInterpreter interpreter(model, resolver, arena, size);
  return interpreter.AllocateTensors() == kTfLiteOk ? 0 : 1;
}

bool Accepts(const tflite::Model* model, size_t size) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    freopen("/dev/null", "w", stdout);
    _exit(TryArena(model, size));
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

const char* kTypes[] = {"TfLiteEvalTensor data", "Persistent TfLiteTensor data",
                        "Persistent TfLiteTensor quantization data", "Persistent buffer data",
                        "TfLiteTensor variable buffer data", "NodeAndRegistration struct", "Operator runtime data"};
const tflite::RecordedAllocationType kTypeIds[] = {
    tflite::RecordedAllocationType::kTfLiteEvalTensorData,
    tflite::RecordedAllocationType::kPersistentTfLiteTensorData,
    tflite::RecordedAllocationType::kPersistentTfLiteTensorQuantizationData,
    tflite::RecordedAllocationType::kPersistentBufferData,
    tflite::RecordedAllocationType::kTfLiteTensorVariableBufferData,
    tflite::RecordedAllocationType::kNodeAndRegistrationArray,
    tflite::RecordedAllocationType::kOpData};

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && strcmp(argv[1], "sizes") == 0) {
    PrintSizes();
    return 0;
  }
  if (argc < 2) {
    fprintf(stderr, "usage: measure sizes | measure FILE.tflite [MAX_SCAN]\n");
    return 2;
  }
  FILE* f = fopen(argv[1], "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  std::vector<uint8_t> bytes;
  uint8_t chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) bytes.insert(bytes.end(), chunk, chunk + n);
  fclose(f);
  // The model must stay 16-byte aligned (flatbuffers' alignment of its buffers).
  uint8_t* aligned = static_cast<uint8_t*>(aligned_alloc(16, (bytes.size() + 15) / 16 * 16));
  memcpy(aligned, bytes.data(), bytes.size());
  const tflite::Model* model = tflite::GetModel(aligned);
  size_t max_scan = argc >= 3 ? strtoul(argv[2], nullptr, 10) : 16384;

  Resolver resolver;
  Register(resolver);
  tflite::RecordingMicroInterpreter interpreter(model, resolver, arena, kLargeArena);
  // The allocator objects and what the interpreter's constructor allocates, before any tensor.
  size_t tail_after_create = interpreter.GetMicroAllocator().GetSimpleMemoryAllocator()->GetPersistentUsedBytes();
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    fprintf(stderr, "AllocateTensors failed for %s\n", argv[1]);
    return 1;
  }
  const tflite::RecordingMicroAllocator& allocator = interpreter.GetMicroAllocator();
  const tflite::RecordingSingleArenaBufferAllocator* buffers = allocator.GetSimpleMemoryAllocator();
  size_t total = buffers->GetUsedBytes();
  printf("{\"pointer_bytes\": %u, \"file_bytes\": %u, \"arena_bytes\": %u, \"head_bytes\": %u, \"tail_bytes\": %u, "
         "\"tail_after_create_bytes\": %u, \"operators\": %u, \"tensors\": %u, \"recorded\": {",
         (unsigned)sizeof(void*), (unsigned)bytes.size(), (unsigned)total,
         (unsigned)buffers->GetNonPersistentUsedBytes(), (unsigned)buffers->GetPersistentUsedBytes(),
         (unsigned)tail_after_create,
         (unsigned)model->subgraphs()->Get(0)->operators()->size(),
         (unsigned)model->subgraphs()->Get(0)->tensors()->size());
  for (int i = 0; i < 7; ++i) {
    tflite::RecordedAllocation a = allocator.GetRecordedAllocation(kTypeIds[i]);
    printf("%s\"%s\": {\"requested\": %u, \"used\": %u, \"count\": %u}", i ? ", " : "", kTypes[i],
           (unsigned)a.requested_bytes, (unsigned)a.used_bytes, (unsigned)a.count);
  }
  printf("}");
  // The smallest accepted arena: scan upwards byte by byte from below the recorded total.
  size_t start = total > 256 ? total - 256 : 1;
  long minimum = -1;
  for (size_t size = start; size <= total + max_scan; ++size) {
    if (Accepts(model, size)) {
      minimum = (long)size;
      break;
    }
  }
  printf(", \"minimum_arena_bytes\": %ld}\n", minimum);
  return 0;
}
