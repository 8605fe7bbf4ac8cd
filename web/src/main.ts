import { createApp } from "vue";
import App from "./App.vue";
import { router } from "./router";
import { events } from "./live";
import "./styles.css";

events.start();
createApp(App).use(router).mount("#app");
