import { createRouter, createWebHistory } from "vue-router";

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", redirect: "/jobs" },
    { path: "/jobs", name: "jobs", component: () => import("./pages/JobsPage.vue") },
    { path: "/grid", name: "grid", component: () => import("./pages/GridPage.vue") },
    {
      path: "/jobs/:jobId/grid",
      name: "task-grid",
      component: () => import("./pages/TaskGridPage.vue"),
      props: true,
    },
    {
      path: "/jobs/:jobId/:section(tasks)?/:taskId?",
      name: "job",
      component: () => import("./pages/JobDetailPage.vue"),
      props: true,
    },
    {
      path: "/workers/:workerId?",
      name: "workers",
      component: () => import("./pages/WorkersPage.vue"),
      props: true,
    },
    { path: "/tags", name: "tags", component: () => import("./pages/TagsPage.vue") },
    {
      path: "/submit/:jobType?",
      name: "submit",
      component: () => import("./pages/SubmitPage.vue"),
      props: true,
    },
    { path: "/admin", name: "admin", component: () => import("./pages/AdminPage.vue") },
    {
      path: "/notifications",
      name: "notifications",
      component: () => import("./pages/NotificationsPage.vue"),
    },
    { path: "/:unknown(.*)*", name: "not-found", component: () => import("./pages/NotFoundPage.vue") },
  ],
});
