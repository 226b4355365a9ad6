#include "integrations/frameworks/plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gpurm {
namespace {

using nlohmann::json;

// GPU models are built by hand: plans take whatever the inventory parsed.
GpuModel Model(Vendor vendor, const std::string& canonical, bool bf16) {
  GpuModel model;
  model.raw_name = canonical;
  model.canonical = canonical;
  model.vendor = vendor;
  model.supports_bf16 = bf16;
  return model;
}

GpuModel V100() { return Model(Vendor::kNvidia, "V100", false); }
GpuModel A100() { return Model(Vendor::kNvidia, "A100", true); }

PlannedGpu Planned(const std::string& node, int index, const GpuModel& model, int64_t total_mib,
                   const std::string& address = "", int nvlink_group = -1) {
  PlannedGpu planned;
  planned.node_name = node;
  planned.node_address = address;
  planned.gpu.index = index;
  planned.gpu.uuid = "GPU-" + node + "-" + std::to_string(index);
  planned.gpu.model = model;
  planned.gpu.memory_total_mib = total_mib;
  planned.gpu.nvlink_group = nvlink_group;
  planned.granted_mib = total_mib;
  return planned;
}

PlanInput Input(std::vector<PlannedGpu> gpus, bool mixed_precision = false,
                bool distributed = false) {
  PlanInput input;
  input.request.gpu_count = static_cast<int>(gpus.size());
  input.request.mixed_precision = mixed_precision;
  input.request.distributed_training = distributed;
  input.gpus = std::move(gpus);
  return input;
}

TEST(EstimateBatchSizeTest, NothingFitsWithoutMemory) {
  EXPECT_EQ(EstimateBatchSize(0, 0, 48.0, false), 0);
  EXPECT_EQ(EstimateBatchSize(-5, 0, 48.0, false), 0);
}

TEST(EstimateBatchSizeTest, WeightsAloneMustFit) {
  // 16 Mi parameters x 16 bytes = 256 MiB of weights, gradients and Adam state.
  const int64_t params = 16 * 1024 * 1024;
  EXPECT_EQ(EstimateBatchSize(255, params, 48.0, false), 0);
  // The model fits but not one whole sample: still at least 1.
  EXPECT_EQ(EstimateBatchSize(256, params, 48.0, false), 1);
  EXPECT_EQ(EstimateBatchSize(256 + 4 * 48, params, 48.0, false), 4);
  EXPECT_EQ(EstimateBatchSize(256 + 7 * 48, params, 48.0, false), 4);
}

TEST(EstimateBatchSizeTest, LargestPowerOfTwo) {
  EXPECT_EQ(EstimateBatchSize(1024, 0, 1.0, false), 1024);
  EXPECT_EQ(EstimateBatchSize(1023, 0, 1.0, false), 512);
  EXPECT_EQ(EstimateBatchSize(100, 0, 30.0, false), 2);
}

TEST(EstimateBatchSizeTest, MixedPrecisionHalvesActivations) {
  EXPECT_EQ(EstimateBatchSize(1024, 0, 2.0, false), 512);
  EXPECT_EQ(EstimateBatchSize(1024, 0, 2.0, true), 1024);
}

TEST(EstimateBatchSizeTest, InvalidInputsAndCap) {
  EXPECT_EQ(EstimateBatchSize(1024, 0, 0.0, false), 0);
  EXPECT_EQ(EstimateBatchSize(1024, 0, -1.0, false), 0);
  EXPECT_EQ(EstimateBatchSize(1024, -1, 1.0, false), 0);
  EXPECT_EQ(EstimateBatchSize(int64_t{1} << 40, 0, 0.001, false), 1 << 16);
}

TEST(GpuConfigTest, SingleNvidiaGpu) {
  const json config = BuildGpuConfig(Input({Planned("n1", 2, V100(), 32768, "10.0.0.5")}));
  EXPECT_EQ(config["device"], "gpu");
  EXPECT_EQ(config["vendor"], "nvidia");
  EXPECT_EQ(config["gpu_type"], "V100");
  EXPECT_EQ(config["gpu_count"], 1);
  const json env = {{"CUDA_DEVICE_ORDER", "PCI_BUS_ID"},
                    {"CUDA_VISIBLE_DEVICES", "2"},
                    {"GPURM_CUDA_MEMORY_LIMITS_MB", "32768"}};
  EXPECT_EQ(config["environment"], env);
  ASSERT_EQ(config["nodes"].size(), 1u);
  EXPECT_EQ(config["nodes"][0]["node_name"], "n1");
  EXPECT_EQ(config["nodes"][0]["address"], "10.0.0.5");
  EXPECT_EQ(config["nodes"][0]["gpu_indices"], json({2}));
  EXPECT_EQ(config["nodes"][0]["gpu_uuids"], json({"GPU-n1-2"}));
  EXPECT_EQ(config["nodes"][0]["environment"], env);
  EXPECT_DOUBLE_EQ(config["memory_gb_per_gpu"].get<double>(), 32.0);
  EXPECT_EQ(config["memory_limit_mb"], 29491);  // floor(0.9 x 32768)
  EXPECT_DOUBLE_EQ(config["gpu_memory_fraction"].get<double>(), 0.9);
  EXPECT_EQ(config["mixed_precision"],
            json({{"enabled", false}, {"dtype", "float32"}, {"loss_scaling", false}}));
  EXPECT_EQ(config["distributed"]["enabled"], false);
  EXPECT_EQ(config["distributed"]["world_size"], 1);
  EXPECT_EQ(config["distributed"]["master_addr"], "10.0.0.5");
  EXPECT_EQ(config["distributed"]["environment"], json::object());
  // (29491 MiB - 381.5 MiB of state) / 48 MiB = 606 samples.
  EXPECT_EQ(config["batch_size_estimate"], 512);
  EXPECT_EQ(config["batch_size_basis"]["parameter_count"], 25000000);
  EXPECT_EQ(config["batch_size_basis"]["memory_limit_mb"], 29491);
  EXPECT_EQ(config["warnings"], json::array());
}

TEST(PyTorchPlanTest, SingleNvidiaGpu) {
  const json plan = BuildPyTorchPlan(Input({Planned("n1", 2, V100(), 32768)}));
  EXPECT_EQ(plan["device"], "cuda");
  EXPECT_EQ(plan["visible_devices"], json({2}));
  EXPECT_EQ(plan["environment"]["CUDA_DEVICE_ORDER"], "PCI_BUS_ID");
  EXPECT_DOUBLE_EQ(plan["per_process_memory_fraction"].get<double>(), 0.9);
  EXPECT_EQ(plan["memory_limit_mb"], 29491);
  EXPECT_EQ(plan["amp"], json({{"enabled", false}, {"dtype", "float32"}, {"grad_scaler", false}}));
  EXPECT_EQ(plan["distributed"]["enabled"], false);
  EXPECT_EQ(plan["distributed"]["wrapper"], nullptr);
  EXPECT_EQ(plan["distributed"]["master_addr"], "n1");  // No address: the node name.
  EXPECT_EQ(plan["distributed"]["torchrun_args"],
            json({"--standalone", "--nnodes=1", "--nproc_per_node=1"}));
  EXPECT_EQ(plan["batch_size_estimate"], 512);
  EXPECT_FALSE(plan["oom_advice"].empty());
}

TEST(TensorFlowPlanTest, SingleNvidiaGpu) {
  const json plan = BuildTensorFlowPlan(Input({Planned("n1", 0, V100(), 32768)}));
  EXPECT_EQ(plan["device"], "gpu");
  EXPECT_EQ(plan["physical_device_type"], "GPU");
  EXPECT_EQ(plan["visible_devices"], json({0}));
  EXPECT_EQ(plan["environment"]["CUDA_VISIBLE_DEVICES"], "0");
  EXPECT_EQ(plan["memory_limit_mb"], 29491);
  EXPECT_EQ(plan["memory_growth"], false);
  EXPECT_EQ(plan["mixed_precision_policy"], "float32");
  EXPECT_EQ(plan["strategy"], "OneDeviceStrategy");
  EXPECT_EQ(plan["communication"], nullptr);
  EXPECT_EQ(plan["tf_config"], nullptr);
  EXPECT_FALSE(plan["environment"].contains("TF_CONFIG"));
  EXPECT_EQ(plan["batch_size_estimate"], 512);
  // Mixed precision is off, so it is among the advice.
  EXPECT_THAT(plan["oom_advice"].dump(), testing::HasSubstr("mixed precision"));
  EXPECT_THAT(plan["oom_advice"].dump(), testing::HasSubstr("gradient accumulation"));
}

// A MIG device is handed to CUDA by its uuid: CUDA selects MIG devices by
// uuid only, and its index is the whole GPU's.
TEST(GpuConfigTest, MigDeviceIsMadeVisibleByItsUuid) {
  PlannedGpu mig = Planned("dgx", 4, ParseGpuModel("NVIDIA H100 80GB HBM3 MIG 3g.40gb"), 40320);
  mig.gpu.uuid = "MIG-00000004-0000-4000-8000-000000000001";
  mig.gpu.mig_parent_uuid = "GPU-dgx-4";
  mig.gpu.mig_profile = "3g.40gb";
  const json config = BuildGpuConfig(Input({mig}));
  EXPECT_EQ(config["gpu_type"], "H100 MIG 3g.40gb");
  const json env = {{"CUDA_DEVICE_ORDER", "PCI_BUS_ID"},
                    {"CUDA_VISIBLE_DEVICES", "MIG-00000004-0000-4000-8000-000000000001"},
                    {"GPURM_CUDA_MEMORY_LIMITS_MB", "40320"}};
  EXPECT_EQ(config["environment"], env);
  EXPECT_EQ(config["nodes"][0]["gpu_indices"], json({4}));  // The GPU it is part of.
  EXPECT_EQ(config["nodes"][0]["gpu_uuids"], json({"MIG-00000004-0000-4000-8000-000000000001"}));
  EXPECT_EQ(config["memory_limit_mb"], 36288);  // floor(0.9 x 40320): the MIG device's memory.
  EXPECT_EQ(BuildPyTorchPlan(Input({mig}))["environment"]["CUDA_VISIBLE_DEVICES"],
            "MIG-00000004-0000-4000-8000-000000000001");
  EXPECT_EQ(BuildTensorFlowPlan(Input({mig}))["environment"]["CUDA_VISIBLE_DEVICES"],
            "MIG-00000004-0000-4000-8000-000000000001");
}

std::vector<PlannedGpu> FourOnOneNode(int nvlink_group_of_last) {
  return {Planned("n1", 0, A100(), 81920, "", 0), Planned("n1", 1, A100(), 81920, "", 0),
          Planned("n1", 2, A100(), 81920, "", 0),
          Planned("n1", 3, A100(), 81920, "", nvlink_group_of_last)};
}

// The CUDA guard's limits: each node's grants, in the order of its visible
// devices, in the environment and as granted_memory_mb.
TEST(GpuConfigTest, CarriesTheGrantPerVisibleDeviceForTheCudaGuard) {
  PlannedGpu slice = Planned("n1", 3, A100(), 81920);
  slice.granted_mib = 20480;
  slice.exclusive = false;
  PlannedGpu whole = Planned("n1", 1, A100(), 81920);
  PlannedGpu other_node = Planned("n2", 0, V100(), 32768);
  const json config = BuildGpuConfig(Input({slice, whole, other_node}));
  ASSERT_EQ(config["nodes"].size(), 2u);
  EXPECT_EQ(config["nodes"][0]["environment"]["CUDA_VISIBLE_DEVICES"], "3,1");
  EXPECT_EQ(config["nodes"][0]["environment"]["GPURM_CUDA_MEMORY_LIMITS_MB"], "20480,81920");
  EXPECT_EQ(config["nodes"][0]["granted_memory_mb"], json({20480, 81920}));
  EXPECT_EQ(config["nodes"][1]["environment"]["GPURM_CUDA_MEMORY_LIMITS_MB"], "32768");
  EXPECT_EQ(config["environment"], config["nodes"][0]["environment"]);
  EXPECT_EQ(BuildPyTorchPlan(Input({slice}))["environment"]["GPURM_CUDA_MEMORY_LIMITS_MB"],
            "20480");
}

TEST(GpuConfigTest, FourGpusOneNode) {
  const json config = BuildGpuConfig(Input(FourOnOneNode(0)));
  EXPECT_EQ(config["gpu_count"], 4);
  EXPECT_EQ(config["environment"]["CUDA_VISIBLE_DEVICES"], "0,1,2,3");
  EXPECT_EQ(config["environment"]["NCCL_DEBUG"], "WARN");
  EXPECT_EQ(config["nodes"][0]["interconnect"], "nvlink");
  const json& distributed = config["distributed"];
  EXPECT_EQ(distributed["enabled"], true);  // Several GPUs: one process per GPU.
  EXPECT_EQ(distributed["backend"], "nccl");
  EXPECT_EQ(distributed["collective_library"], "nccl");
  EXPECT_EQ(distributed["world_size"], 4);
  EXPECT_EQ(distributed["nnodes"], 1);
  EXPECT_EQ(distributed["nproc_per_node"], 4);
  EXPECT_EQ(distributed["master_port"], 29500);
  EXPECT_EQ(distributed["environment"], json({{"NCCL_DEBUG", "WARN"}}));
}

TEST(GpuConfigTest, GpusOutsideOneLinkIslandUsePcieWithoutForcingNccl) {
  const json config = BuildGpuConfig(Input(FourOnOneNode(1)));
  EXPECT_EQ(config["nodes"][0]["interconnect"], "pcie");
  // NCCL picks the transport from the topology itself; nothing is forced.
  EXPECT_FALSE(config["environment"].contains("NCCL_P2P_LEVEL"));
  EXPECT_FALSE(config["environment"].contains("NCCL_P2P_DISABLE"));
}

TEST(PyTorchPlanTest, FourGpusOneNode) {
  const json plan = BuildPyTorchPlan(Input(FourOnOneNode(0)));
  EXPECT_EQ(plan["device"], "cuda");
  EXPECT_EQ(plan["visible_devices"], json({0, 1, 2, 3}));
  EXPECT_EQ(plan["distributed"]["enabled"], true);
  EXPECT_EQ(plan["distributed"]["wrapper"], "DistributedDataParallel");
  EXPECT_EQ(plan["distributed"]["torchrun_args"],
            json({"--standalone", "--nnodes=1", "--nproc_per_node=4"}));
}

TEST(TensorFlowPlanTest, FourGpusOneNode) {
  const json plan = BuildTensorFlowPlan(Input(FourOnOneNode(0)));
  EXPECT_EQ(plan["strategy"], "MirroredStrategy");
  EXPECT_EQ(plan["communication"], "NCCL");
  EXPECT_EQ(plan["tf_config"], nullptr);
}

PlanInput TwoNodesOfFour() {
  std::vector<PlannedGpu> gpus;
  for (int i = 0; i < 4; ++i) gpus.push_back(Planned("a", i, V100(), 32768, "10.0.0.1"));
  for (int i = 4; i < 8; ++i) gpus.push_back(Planned("b", i, V100(), 32768));
  PlanInput input = Input(std::move(gpus), /*mixed_precision=*/false, /*distributed=*/true);
  input.master_port = 29600;
  return input;
}

TEST(GpuConfigTest, TwoNodes) {
  const json config = BuildGpuConfig(TwoNodesOfFour());
  ASSERT_EQ(config["nodes"].size(), 2u);
  EXPECT_EQ(config["nodes"][0]["environment"]["CUDA_VISIBLE_DEVICES"], "0,1,2,3");
  EXPECT_EQ(config["nodes"][1]["environment"]["CUDA_VISIBLE_DEVICES"], "4,5,6,7");
  EXPECT_EQ(config["nodes"][1]["address"], "b");
  EXPECT_EQ(config["environment"], config["nodes"][0]["environment"]);
  EXPECT_EQ(config["distributed"]["world_size"], 8);
  EXPECT_EQ(config["distributed"]["nnodes"], 2);
  EXPECT_EQ(config["distributed"]["nproc_per_node"], 4);
  EXPECT_EQ(config["distributed"]["master_addr"], "10.0.0.1");
  EXPECT_EQ(config["distributed"]["master_port"], 29600);
}

TEST(PyTorchPlanTest, TwoNodesTorchrunArgsPerNodeRank) {
  const json plan = BuildPyTorchPlan(TwoNodesOfFour());
  const json& nodes = plan["nodes"];
  ASSERT_EQ(nodes.size(), 2u);
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(nodes[rank]["node_rank"], rank);
    EXPECT_EQ(nodes[rank]["nproc_per_node"], 4);
    EXPECT_EQ(nodes[rank]["torchrun_args"],
              json({"--nnodes=2", "--nproc_per_node=4", "--node_rank=" + std::to_string(rank),
                    "--master_addr=10.0.0.1", "--master_port=29600"}));
  }
  EXPECT_EQ(nodes[1]["visible_devices"], json({4, 5, 6, 7}));
  EXPECT_EQ(plan["distributed"]["torchrun_args"], nodes[0]["torchrun_args"]);
  EXPECT_EQ(plan["distributed"]["world_size"], 8);
}

TEST(TensorFlowPlanTest, TwoNodesTfConfigPerWorker) {
  const json plan = BuildTensorFlowPlan(TwoNodesOfFour());
  EXPECT_EQ(plan["strategy"], "MultiWorkerMirroredStrategy");
  const json workers = {"10.0.0.1:29600", "b:29600"};
  ASSERT_EQ(plan["tf_config"].size(), 2u);
  for (int index = 0; index < 2; ++index) {
    const json expected = {{"cluster", {{"worker", workers}}},
                           {"task", {{"type", "worker"}, {"index", index}}}};
    EXPECT_EQ(plan["tf_config"][index], expected);
    // Each node's environment carries its own TF_CONFIG.
    EXPECT_EQ(json::parse(plan["nodes"][index]["environment"]["TF_CONFIG"].get<std::string>()),
              expected);
  }
  EXPECT_EQ(plan["environment"], plan["nodes"][0]["environment"]);
}

TEST(GpuConfigTest, AmdVisibleDevices) {
  const GpuModel mi250x = Model(Vendor::kAmd, "MI250X", true);
  const json config =
      BuildGpuConfig(Input({Planned("n1", 1, mi250x, 65536), Planned("n1", 3, mi250x, 65536)}));
  EXPECT_EQ(config["vendor"], "amd");
  // ROCr selects the physical devices; HIP then indexes what ROCr left.
  const json env = {
      {"ROCR_VISIBLE_DEVICES", "1,3"}, {"HIP_VISIBLE_DEVICES", "0,1"}, {"NCCL_DEBUG", "WARN"}};
  EXPECT_EQ(config["environment"], env);
  EXPECT_EQ(config["distributed"]["backend"], "nccl");
  EXPECT_EQ(config["distributed"]["collective_library"], "rccl");
  EXPECT_EQ(BuildPyTorchPlan(Input({Planned("n1", 1, mi250x, 65536)}))["device"], "cuda");
  EXPECT_EQ(BuildTensorFlowPlan(Input({Planned("n1", 1, mi250x, 65536)}))["device"], "gpu");
}

TEST(GpuConfigTest, IntelVisibleDevices) {
  const GpuModel max1550 = Model(Vendor::kIntel, "MAX1550", true);
  const PlanInput input =
      Input({Planned("n1", 0, max1550, 131072), Planned("n1", 2, max1550, 131072)});
  const json config = BuildGpuConfig(input);
  const json env = {{"ZE_FLAT_DEVICE_HIERARCHY", "COMPOSITE"},
                    {"ZE_ENABLE_PCI_ID_DEVICE_ORDER", "1"},
                    {"ZE_AFFINITY_MASK", "0,2"}};
  EXPECT_EQ(config["environment"], env);
  EXPECT_EQ(config["distributed"]["backend"], "xccl");
  EXPECT_EQ(config["distributed"]["collective_library"], "oneccl");
  EXPECT_EQ(BuildPyTorchPlan(input)["device"], "xpu");
  EXPECT_EQ(BuildTensorFlowPlan(input)["physical_device_type"], "XPU");
  EXPECT_EQ(BuildTensorFlowPlan(input)["communication"], "AUTO");
}

TEST(GpuConfigTest, AscendVisibleDevices) {
  const GpuModel ascend = Model(Vendor::kHuawei, "ASCEND910B", true);
  const PlanInput input = Input({Planned("n1", 5, ascend, 65536)}, false, /*distributed=*/true);
  const json config = BuildGpuConfig(input);
  EXPECT_EQ(config["vendor"], "huawei");
  EXPECT_EQ(config["environment"], json({{"ASCEND_RT_VISIBLE_DEVICES", "5"}}));
  EXPECT_EQ(config["distributed"]["enabled"], true);  // Asked for, even on one device.
  EXPECT_EQ(config["distributed"]["backend"], "hccl");
  EXPECT_EQ(BuildPyTorchPlan(input)["device"], "npu");
  EXPECT_EQ(BuildTensorFlowPlan(input)["device"], "npu");
}

TEST(GpuConfigTest, SharedSliceCapsToTheSlice) {
  PlannedGpu slice = Planned("n1", 0, V100(), 32768);
  slice.granted_mib = 8192;
  slice.exclusive = false;
  const PlanInput input = Input({slice});
  const json config = BuildGpuConfig(input);
  EXPECT_DOUBLE_EQ(config["memory_gb_per_gpu"].get<double>(), 8.0);
  EXPECT_EQ(config["memory_limit_mb"], 7372);  // floor(0.9 x 8192)
  const json torch = BuildPyTorchPlan(input);
  // 0.9 x 8 GiB of a 32 GiB device.
  EXPECT_NEAR(torch["per_process_memory_fraction"].get<double>(), 0.225, 1e-12);
  EXPECT_EQ(torch["memory_limit_mb"], 7372);
  EXPECT_EQ(BuildTensorFlowPlan(input)["memory_limit_mb"], 7372);
}

TEST(GpuConfigTest, MemoryLimitIsTheSmallestOverGpus) {
  PlannedGpu small = Planned("n1", 1, V100(), 16384);
  PlanInput input = Input({Planned("n1", 0, V100(), 32768), small});
  input.request.gpu_memory_fraction = 0.5;
  const json config = BuildGpuConfig(input);
  EXPECT_DOUBLE_EQ(config["memory_gb_per_gpu"].get<double>(), 16.0);
  EXPECT_EQ(config["memory_limit_mb"], 8192);
  EXPECT_DOUBLE_EQ(BuildPyTorchPlan(input)["per_process_memory_fraction"].get<double>(), 0.5);
}

TEST(GpuConfigTest, CpuPlanWhenNoGpuFits) {
  const PlanInput input = Input({}, /*mixed_precision=*/true, /*distributed=*/true);
  const json cpu_env = {{"CUDA_VISIBLE_DEVICES", ""}, {"HIP_VISIBLE_DEVICES", ""}};
  const json config = BuildGpuConfig(input);
  EXPECT_EQ(config["device"], "cpu");
  EXPECT_EQ(config["vendor"], nullptr);
  EXPECT_EQ(config["gpu_count"], 0);
  EXPECT_EQ(config["nodes"], json::array());
  EXPECT_EQ(config["environment"], cpu_env);
  EXPECT_EQ(config["memory_limit_mb"], nullptr);
  EXPECT_EQ(config["mixed_precision"]["enabled"], false);
  EXPECT_EQ(config["distributed"]["enabled"], false);
  EXPECT_EQ(config["distributed"]["backend"], "gloo");
  EXPECT_EQ(config["batch_size_estimate"], nullptr);

  const json torch = BuildPyTorchPlan(input);
  EXPECT_EQ(torch["device"], "cpu");
  EXPECT_EQ(torch["environment"], cpu_env);
  EXPECT_EQ(torch["per_process_memory_fraction"], nullptr);
  EXPECT_EQ(torch["amp"]["enabled"], false);
  EXPECT_EQ(torch["distributed"]["torchrun_args"], json::array());

  const json tf = BuildTensorFlowPlan(input);
  EXPECT_EQ(tf["device"], "cpu");
  EXPECT_EQ(tf["strategy"], "default");
  EXPECT_EQ(tf["mixed_precision_policy"], "float32");
  EXPECT_EQ(tf["environment"], cpu_env);
  EXPECT_EQ(tf["visible_devices"], json::array());
}

TEST(MixedPrecisionTest, Bf16WhenEveryGpuSupportsIt) {
  const PlanInput input = Input({Planned("n1", 0, A100(), 81920)}, /*mixed_precision=*/true);
  EXPECT_EQ(BuildGpuConfig(input)["mixed_precision"],
            json({{"enabled", true}, {"dtype", "bfloat16"}, {"loss_scaling", false}}));
  EXPECT_EQ(BuildPyTorchPlan(input)["amp"],
            json({{"enabled", true}, {"dtype", "bfloat16"}, {"grad_scaler", false}}));
  EXPECT_EQ(BuildTensorFlowPlan(input)["mixed_precision_policy"], "mixed_bfloat16");
}

TEST(MixedPrecisionTest, Fp16WithLossScalingOtherwise) {
  const PlanInput input =
      Input({Planned("n1", 0, A100(), 32768), Planned("n1", 1, V100(), 32768)}, true);
  EXPECT_EQ(BuildGpuConfig(input)["mixed_precision"],
            json({{"enabled", true}, {"dtype", "float16"}, {"loss_scaling", true}}));
  EXPECT_EQ(BuildPyTorchPlan(input)["amp"]["grad_scaler"], true);
  const json tf = BuildTensorFlowPlan(input);
  EXPECT_EQ(tf["mixed_precision_policy"], "mixed_float16");
  EXPECT_EQ(tf["loss_scaling"], true);
  // Activations halve: twice the fp32 estimate (1212 samples fit -> 1024).
  EXPECT_EQ(tf["batch_size_estimate"], 1024);
  EXPECT_THAT(tf["oom_advice"].dump(), testing::Not(testing::HasSubstr("enable mixed precision")));
}

TEST(GpuConfigTest, UnknownVendorIsNotGuessed) {
  GpuModel unknown;
  unknown.raw_name = "Mystery Accelerator 9000";
  const PlanInput input = Input({Planned("n1", 0, unknown, 16384)}, true);
  const json config = BuildGpuConfig(input);
  EXPECT_EQ(config["device"], "gpu");
  EXPECT_EQ(config["gpu_type"], "Mystery Accelerator 9000");
  EXPECT_EQ(config["environment"], json::object());
  EXPECT_EQ(config["mixed_precision"]["enabled"], false);
  EXPECT_EQ(config["warnings"].size(), 1u);
  EXPECT_EQ(BuildPyTorchPlan(input)["device"], "cpu");
  EXPECT_EQ(BuildTensorFlowPlan(input)["strategy"], "default");
}

}  // namespace
}  // namespace gpurm
